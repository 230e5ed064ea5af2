"""image-operator-dev: what developing image-operator needs and the running operator does not.

- `emulator/`: the bundled cloud emulator (aiohttp), for tests, benchmarks and `make demo`;
- `localcluster`: etcd + kube-apiserver on loopback, for the integration tests and the demo;
- `crdgen`, `chartvalues`, `docsgen`, `generated`: the generators of the CRDs, the chart's
  values schema and the reference docs, from the runtime package's models;
- `commands`: the developer subcommands of `image-operator` (`emulator`, `local-cluster`,
  `crds`, `generate`), registered in the `image_operator.commands` entry-point group.

It is a separate distribution (`dev/pyproject.toml`) so that the operator's wheel and container
image carry none of it. It imports `image_operator`; `image_operator` never imports it.
"""

__version__ = "0.1.0"
