"""`image-operator status` (and `kubectl imageops status`): imageops objects as a tree.

- `kinds`: the kinds, their names on the command line and what each kind's tree reads;
- `health`: one verdict per object or sub-item (Ready, in progress, Stalled, paused, ...);
- `tree`: pure functions from object dicts to a tree of `Node`s;
- `render`: a tree to lines of text, with symbols and (on a terminal) colour;
- `kube`: the thin Kubernetes layer: the user's kubeconfig, lists, watches, errors;
- `command`: the subcommand itself (arguments, one-shot print, `--watch` redraws).

Everything but `kube` and `command` is pure and unit-tested with fixture objects.
"""
