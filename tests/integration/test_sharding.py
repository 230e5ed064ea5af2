"""Two shards split the Images of one cluster by UID hash (KEP-5866 `shardSelector`): each
operator is sent, and handles, exactly its half; and a sharded operator refuses to start on an
API server that would send every shard everything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from image_operator.handlers.sharding import owns
from image_operator_dev.localcluster import LocalCluster, apply_manifests, find_kubectl
from tests.integration.conftest import (
    ARGON_TOKEN,
    ROOT,
    Emulator,
    add_provider,
    add_secret,
    image_manifest,
    namespace_kube,
    namespace_operator,
)

pytestmark = pytest.mark.integration

IMAGES = 40


def test_two_shards_each_handle_only_their_half(
    control_plane: Any, emulator: Emulator, tmp_path: Path
) -> None:
    api = control_plane.api_client()
    kube = namespace_kube(api, "shards-")
    add_secret(kube, "argon-credentials", {"token": ARGON_TOKEN})
    add_provider(
        kube,
        "argon",
        {
            "type": "argon",
            "endpoint": emulator.argon_url,
            "project": "default",
            "credentialsSecretRef": {"name": "argon-credentials"},
        },
    )
    logs = [tmp_path / f"shard-{i}.log" for i in range(2)]
    shards = [
        namespace_operator(control_plane, kube.namespace, logs[i], shards="2", shard_index=str(i))
        for i in range(2)
    ]
    for shard in shards:
        shard.start()
    try:
        names = [f"s-{i}" for i in range(IMAGES)]
        uids = {
            name: kube.create("images", image_manifest(name))["metadata"]["uid"] for name in names
        }
        for name in names:
            kube.wait_ready("images", name, timeout=120)
        assert all(shard.alive() for shard in shards)
    finally:
        for shard in shards:
            shard.stop()
        api.close()

    texts = [log.read_text() for log in logs]
    # kopf's debug log prints each body its watch delivered (name, then namespace); the Image
    # handler logs the name it asked the cloud for, `<name>-<uid prefix>`.
    seen = [
        {name for name in names if f"'name': '{name}', 'namespace': '{kube.namespace}'" in text}
        for text in texts
    ]
    handled = [{name for name in names if f"accepted image '{name}-" in text} for text in texts]
    expected = [{name for name in names if owns(uids[name], i, 2)} for i in range(2)]
    assert seen == expected  # each shard was sent exactly its own half
    assert handled == expected  # and handled exactly that
    assert seen[0].isdisjoint(seen[1]) and seen[0] | seen[1] == set(names)
    assert min(len(s) for s in seen) > 0  # both shards had work: the split was tested
    # The ImageProvider is handled by shard 0 alone (shard 1 only caches it from its watch).
    assert "Handler 'provider_changed' succeeded" in texts[0]
    assert "Handler 'provider_changed'" not in texts[1]


def test_a_sharded_operator_refuses_an_api_server_that_does_not_filter(
    control_plane: Any, tmp_path: Path
) -> None:
    bin_dir = control_plane.cluster.bin_dir
    # The same release with the feature gate off: it ignores shardSelector, as releases before
    # 1.36 do (a later --feature-gates value wins).
    with LocalCluster(
        bin_dir,
        tmp_path / "cluster",
        extra_apiserver_args=["--feature-gates=ShardedListAndWatch=false"],
    ) as cluster:
        apply_manifests(
            cluster.kubeconfig_path,
            sorted((ROOT / "crds").glob("*.yaml")),
            kubectl=find_kubectl(bin_dir),
        )
        env = {
            **control_plane.env(),
            "KUBECONFIG": str(cluster.kubeconfig_path),
            "IMAGE_OPERATOR_SHARDS": "2",
            "IMAGE_OPERATOR_SHARD_INDEX": "1",
            "IMAGE_OPERATOR_HEALTH_PORT": "0",
            "IMAGE_OPERATOR_METRICS_PORT": "0",
        }
        run = subprocess.run(
            [sys.executable, "-m", "image_operator", "run", "--standalone"],
            env=env,
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert run.returncode == 2, run.stderr[-2000:]
    assert "ShardedListAndWatch" in run.stderr and "ignores shardSelector" in run.stderr
    assert "Traceback" not in run.stderr
