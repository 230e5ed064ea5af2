"""docs/seed-coverage.md against what the providers send (issue 12 part 1): rich requests of
every emulator-backed provider, recorded at their SDK call points, each parameter accounted for
by a row; every request parameter seed 003 documents has a row. (The contract conftest checks
the parameters of every other contract test too, at the end of the session; seed 002 is
checked against a real Glance in tests/peers/test_openstack_ims.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from image_operator.api.pipeline import ImagePipelineSpec
from image_operator.providers.model import CloudState
from image_operator.providers.pipelines import PipelineBuild
from image_operator_dev.emulator.aliyun_testing import AliyunHarness
from image_operator_dev.emulator.testing import ArgonHarness
from tests.contract import test_aliyun_provider as aliyun_tests
from tests.contract import test_ucloudstack_provider as ucloudstack_tests
from tests.contract.test_aliyun_pipeline_options import RICH_PIPELINE
from tests.contract.test_argon_names import _named
from tests.contract.test_argon_provider import _provider
from tests.contract.test_ucloudstack_emulator import FileServer, UCloudStackHarness, qcow2_file
from tests.contract.test_ucloudstack_options import OPTIONS, _url_request
from tests.seedcoverage import Recorder, Row, counts, rows

start, aliyun = aliyun_tests.start, aliyun_tests.aliyun  # fixtures
harnesses, ucs, files = ucloudstack_tests.harnesses, ucloudstack_tests.ucs, ucloudstack_tests.files

# Seed 003's request tables, as the seed lists them (action: parameters).
SEED_003 = {
    "CloneCustomImageToBaseImage": "Region CompanyID DestImageName SourceImageID",
    "CreateCustomImage": "Region CompanyID ImageName ImageDescription ProjectID "
    "TagKeyValuePairs VMID StorageSetType DiskID",
    "AbortCustomImage": "Region CompanyID ImageID",
    "DeleteBaseImage": "Region CompanyID ImageID",
    "DeleteCustomImage": "Region CompanyID ImageID",
    "DescribeImage": "Region CompanyID ProjectIDs Keyword Limit Offset ImageIDs ImageType "
    "ImageFormat",
    "DescribeBaseImage": "Region ImageIDs",
    "ImportImage": "Region CompanyID ProjectID TagKeyValuePairs ImageName ImageFormat "
    "ImageDescription LoadURL OSType SetArch OSDistribution OSVersion ImageSize ImportType "
    "SupportQGA SupportCloudInit Secret BootloaderType",
    "CompleteImageMultipartUpload": "Region CompanyID ImageID UploadID",
    "AbortImageMultipartUpload": "Region CompanyID UploadID ImageID",
    "GetImageDownloadURL": "Region ImageID",
    "DescribeImageOSVersions": "Region CompanyID ImageOSIDs Limit Offset",
    "UpdateImage": "Region CompanyID ImageID OSType SetArch OSDistribution OSVersion "
    "SupportQGA SupportCloudInit BootloaderType",
}
# Seed 004's top-level request parameters, and seed 000's, as the seeds list them.
SEED_004 = [
    "Tag",
    "RegionId",
    "ResourceGroupId",
    "AddAccount",
    "ToRegionId",
    "BaseImageType",
    "BaseImage",
    "Name",
    "Description",
    "ImageName",
    "VSwitchId",
    "InstanceType",
    "SystemDiskSize",
    "InternetMaxBandwidthOut",
    "DeleteInstanceOnFailure",
    "BuildContent",
    "ClientToken",
    "RepairMode",
    "ImageFamily",
    "TestContent",
    "ImportImageOptions",
    "NvmeSupport",
    "AdvancedOptions",
    "ImageOptions",
]
SEED_000 = [
    "Action",
    "Region",
    "CompShareImageId",
    "GroupId",
    "CommunityImageName",
    "VersionName",
    "VersionDesc",
    "Price",
    "Cover",
    "Tags",
    "Description",
    "Readme",
    "SupportedGpuTypes",
    "AutoStart",
]


# Seed 001's request table, and the fields its example request adds.
SEED_001 = [
    "namespace",
    "image.displayName",
    "image.group",
    "image.repository",
    "image.price",
    "image.cover",
    "image.command",
    "image.name",
    "image.description",
    "image.inputs.N.name",
    "image.outputs.N.name",
    "image.configs.N.name",
    "image.configs.N.controls",
    "image.configs.N.default",
    "image.configs.N.displayName",
    "image.configs.N.index",
    "image.configs.N.kind",
    "image.configs.N.type",
]


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    recorder.install(monkeypatch)
    return recorder


def test_every_row_says_what_sets_it_and_the_counts_are_stable() -> None:
    table = rows()
    assert all(row.kind for row in table)  # raises on a cell of no known kind
    assert len({(r.seed, r.action, r.parameter) for r in table}) == len(table)
    per_seed = {seed: dict(kinds) for seed, kinds in counts(table).items()}
    assert per_seed["003"]["settable"] >= 25
    assert set(per_seed) == {"000", "001", "002", "003", "004"}


def test_every_documented_parameter_of_the_seeds_has_a_row() -> None:
    table = rows()

    def listed(seed: str) -> set[tuple[str, str]]:
        return {(row.action, row.parameter) for row in table if row.seed == seed}

    seed_003 = {(a, p) for a, params in SEED_003.items() for p in params.split()}
    assert seed_003 - listed("003") == set()
    top_004 = {p.split(".")[0] for a, p in listed("004")}
    assert set(SEED_004) - top_004 == set()
    assert {("PublishCompShareImage", p) for p in SEED_000} - listed("000") == set()
    argon_create = "POST /api/v1/namespaces/{namespace}/images"
    assert {(argon_create, p) for p in SEED_001} - listed("001") == set()


def test_rich_ucloudstack_requests_are_all_accounted_for(
    recorder: Recorder, ucs: UCloudStackHarness, files: FileServer
) -> None:
    p = ucloudstack_tests.provider(ucs, image_secret="dregf9u9g23", project_id="project-default")
    url = files.add("/rich.qcow2", qcow2_file())
    request = _url_request(url, OPTIONS)
    created = p.create_image(request)
    ucloudstack_tests.wait_state(p, created.external_id, CloudState.AVAILABLE)
    p.find_image(request)
    p.update_image(created.external_id, _url_request(url, {**OPTIONS, "supportQGA": False}))
    base_id = p.clone_to_base_image(created.external_id, "rich-base")
    p.describe_base_images([base_id])
    p.get_download_url(created.external_id)
    vm = ucloudstack_tests.vm_request(
        "vm", uid="vm-uid", description="captured", tags={"team": "a"}
    )
    p.create_image(vm)

    assert recorder.unaccounted() == []
    sent = {(action, parameter) for _, action, parameter in recorder.sent}
    assert {("ImportImage", p) for p in ("ImageSize", "SupportQGA", "Secret")} <= sent
    assert ("UpdateImage", "BootloaderType") in sent


def test_rich_argon_and_aliyun_requests_are_all_accounted_for(
    recorder: Recorder, argon: ArgonHarness, aliyun: AliyunHarness
) -> None:
    _provider(argon).create_image(_named("rich", description="d", group="g"))
    p = aliyun_tests.provider(aliyun)
    for name in ("sys.raw", "data1.raw", "data2.qcow2"):
        aliyun.put_object("images", name, aliyun_tests.DISK)
    spec = ImagePipelineSpec.model_validate(
        {
            **RICH_PIPELINE,
            "name": "rich",
            "description": "every option",
            "buildContent": "RUN echo hi",
            "testContent": "RUN echo ok",
            "toRegionIDs": ["cn-beijing"],
            "addAccounts": [1234567890],
            "transit": {
                "instanceType": "ecs.g6.large",
                "systemDiskSize": 40,
                "internetMaxBandwidthOut": 5,
                "vSwitchID": "vsw-abc",
                "deleteInstanceOnFailure": True,
            },
            "tags": [{"key": "team", "value": "web"}],
            "resourceGroupID": "rg-abc",
        }
    )
    p.create_pipeline(PipelineBuild(name="rich", spec=spec), client_token="rich-1")

    assert recorder.unaccounted() == []
    sent = {parameter for seed, _, parameter in recorder.sent if seed == "004"}
    assert "ImportImageOptions.DiskDeviceMappings.N.OSSBucket" in sent
    assert "AdvancedOptions.RetainCloudAssistant" in sent
    assert ("001", "POST /api/v1/namespaces/{namespace}/images", "image.name") in recorder.sent


def test_a_parameter_without_a_row_is_reported(tmp_path: Path) -> None:
    recorder = Recorder()
    recorder.record("003", "ImportImage", ["ImageSize", "SomethingNew"])
    table = [Row("003", "ImportImage", "ImageSize", "`spec.ucloudstack.imageSizeGiB`")]

    assert recorder.unaccounted(table) == [("003", "ImportImage", "SomethingNew")]
