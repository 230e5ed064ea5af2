"""The bad-manifest corpus's known gaps: cases that do not behave as a bad manifest must, today.

Keyed by case name, grouped by cause. `seen` is the outcome `test_bad_manifests.py` observes,
and it asserts exactly that: when a fix changes the outcome, the test fails until the entry is
removed (or changed to what the fix gives, if that is still a gap). Outcome words:
refused / refused-unnamed (the message does not name the field), stalled:<Reason> /
stalled-unnamed:<Reason>, waiting:<Reason>, reconciling:<Reason> (work in flight, or waiting
without naming the field), not-ready:<Reason> (Ready=False and neither Reconciling nor Stalled),
ready, no-status, admitted (a change of an immutable field accepted); `+created` when the case
made a cloud object. `traceback` is a piece of the exception's message the gap writes to the
operator's log with a traceback (the test allows no other).
"""

from __future__ import annotations

from tests.integration.bad_manifest_cases import Gap

KNOWN_GAPS: dict[str, Gap] = {}


def _gaps(why: str, seen: dict[str, str], traceback: str | None = None) -> None:
    for name, outcome in seen.items():
        assert name not in KNOWN_GAPS, name
        KNOWN_GAPS[name] = Gap(outcome, why, traceback)


# --- values that reach a cloud as they are: created, Ready -----------------------------------

_gaps(
    "reconcilers/cover.py resolve_cover checks that a cover is Base64, not that it is a picture "
    "(docs/troubleshooting.md says InvalidCover covers 'not an image'): Base64 text is "
    "published as the cover.",
    {"CommunityListing/references/cover-not-a-picture": "ready+created"},
)

# --- references whose messages name the object but not the field ----------------------------

_gaps(
    "handlers/providers.py ProviderRegistry.handle: a missing ImageProvider is waited for "
    "(right), but the message ('ImageProvider 'nope' does not exist in namespace ...') does not "
    "name spec.providerRef.",
    {
        f"{kind}/references/{detail}": "reconciling:WaitingForProvider"
        for kind, detail in (
            ("Image", "provider-missing"),
            ("Image", "provider-names-a-secret"),
            ("BaseImage", "provider-missing"),
            ("ImagePipeline", "provider-missing"),
        )
    },
)
_gaps(
    "handlers/providers.py ProviderRegistry.handle and providers/factory.py build_provider: a "
    "missing Secret, or one without the type's keys, stalls the ImageProvider with a message "
    "that names the Secret but not spec.credentialsSecretRef; a Secret that may yet be made "
    "(GitOps applies in any order) is Stalled rather than waited for.",
    {
        "ImageProvider/references/secret-missing": "stalled-unnamed:ConfigurationError",
        "ImageProvider/references/secret-names-a-configmap": "stalled-unnamed:ConfigurationError",
        "ImageProvider/references/secret-of-another-type": "stalled-unnamed:InvalidSpec",
    },
)
_gaps(
    "reconcilers/provider.py reconcile_provider: a probe the cloud refuses stalls with the "
    "cloud's message as it is (not passed through reconcilers/fields.py with_field_names, as "
    "the other kinds' errors are), so it does not name spec.region / spec.zone.",
    {
        "ImageProvider/references/region-missing": "stalled-unnamed:InvalidSpec",
        "ImageProvider/references/zone-of-another-region": "stalled-unnamed:InvalidSpec",
    },
)
_gaps(
    "handlers/image.py copy_source: an Image whose spec.source.image.imageRef names itself "
    "waits for itself to be Ready, forever; it should stall (or be refused by a CEL rule on "
    "the object comparing it with metadata.name).",
    {"Image/references/copy-of-itself": "waiting:WaitingForSource"},
)

# --- ImageProvider endpoints -----------------------------------------------------------------

_gaps(
    "handlers/imageprovider.py _probe calls ProviderRegistry.resolve (handlers/providers.py) "
    "outside its exception boundary, and build_provider (providers/factory.py) lets httpx's "
    "InvalidURL out (not a ProviderError): an endpoint whose port is not a number (the pattern "
    "^https?://[^\\s]+$ and the endpoint guard accept it) leaves the provider without a status "
    "(observedGeneration -1) and logs a traceback every 60 s.",
    {"ImageProvider/injection/spec.endpoint/port-not-a-number": "no-status"},
    traceback="Invalid port: 'notaport'",
)
_gaps(
    "reconcilers/provider.py reconcile_provider: an endpoint whose path is wrong ('/../../admin' "
    "is normalised to /admin) is probed and the cloud's 404 is reported without naming "
    "spec.endpoint.",
    {"ImageProvider/injection/spec.endpoint/path-escape": "stalled-unnamed:NotFound"},
)
