-- Argo CD health of every imageops.io kind, from the kstatus conditions the operator writes.
-- Healthy: Ready=True for the current generation. Degraded: Stalled=True (nothing improves
-- until the spec changes). Suspended: paused by annotation. Progressing: everything else.
local hs = {}
local status = obj.status
if status == nil or status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for image-operator to report status"
  return hs
end
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for image-operator to observe generation " .. tostring(generation)
  return hs
end
local ready, stalled, reconciling
for _, condition in ipairs(status.conditions) do
  if condition.type == "Ready" then ready = condition end
  if condition.type == "Stalled" then stalled = condition end
  if condition.type == "Reconciling" then reconciling = condition end
end
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = (stalled.reason or "Stalled") .. ": " .. (stalled.message or "")
  return hs
end
if status.phase == "Paused" then
  hs.status = "Suspended"
  hs.message = "Paused by the imageops.io/paused annotation"
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "Ready"
  return hs
end
hs.status = "Progressing"
if reconciling ~= nil and reconciling.message ~= nil then
  hs.message = reconciling.message
elseif ready ~= nil and ready.message ~= nil then
  hs.message = ready.message
else
  hs.message = "Reconciling"
end
return hs
