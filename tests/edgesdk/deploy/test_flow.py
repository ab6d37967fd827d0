"""Deploy to the built-in `local` device (no SSH): push, build, activate, re-deploy, rollback, faults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeagent.store import Store
from edgesdk.bundle import write_bundle
from edgesdk.deploy.flow import Prepared, deploy, deploy_device, deployment_status, prepare, rollback
from edgesdk.deploy.inventory import LOCAL
from edgesdk.errors import DeviceError
from edgesdk.recipe import load_recipe, override


@pytest.fixture()
def device_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The local device's $HOME (the agent lives in <home>/.edgeagent)."""
    home = tmp_path / "device-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def _deployment(home: Path, recipe: str) -> dict:
    return Store(str(home / ".edgeagent")).deployment(recipe)


def test_deploy_redeploy_override_rollback(device_home: Path, models_dir: Path, tmp_path: Path) -> None:
    recipe = load_recipe("yunet")
    work = tmp_path / "work"
    [first] = deploy(recipe, [LOCAL], work, model_dir=models_dir)
    assert first.ok, first.error
    assert first.files_sent == 3 and first.bytes_sent > 300_000  # agent, model, manifest
    assert first.engine and first.build["backend"] == "ort" and first.build["cached"] is False
    assert _deployment(device_home, "yunet")["current"] == first.bundle
    assert first.previous is None  # nothing to roll back to yet
    assert first.to_json()["effective_precision"] == "fp32"  # onnxruntime on the CPU: fp16 runs in fp32

    [again] = deploy(recipe, [LOCAL], work, model_dir=models_dir)
    assert again.ok and again.bytes_sent == 0 and again.files_sent == 0 and again.files_skipped == 2
    assert again.build["cached"] is True and again.engine == first.engine

    fp32 = override(recipe, {"build.precision": "fp32"})
    [changed] = deploy(fp32, [LOCAL], work, model_dir=models_dir)
    assert changed.ok and changed.files_sent == 1  # only the manifest: the model bytes are unchanged
    assert changed.engine != first.engine and changed.previous == first.bundle
    assert _deployment(device_home, "yunet") == {"current": changed.bundle, "history": [first.bundle]}

    result = rollback("yunet", LOCAL, work)
    assert result["deployment"]["current"] == first.bundle
    assert result["engine"]["engine"] == first.engine and result["engine"]["cached"] is True

    status = deployment_status(LOCAL, work)["recipes"]["yunet"]  # what `edgesdk status` shows
    assert status["current"] == first.bundle and status["history"] == [changed.bundle]
    assert status["engine"] == first.engine and status["backend"] == "ort"
    assert (status["precision"], status["effective_precision"]) == ("fp16", "fp32")
    assert status["engine_bytes"] > 300_000 and status["activated"] >= status["built"] > 0


def test_dry_run_changes_nothing(device_home: Path, models_dir: Path, tmp_path: Path) -> None:
    [report] = deploy(load_recipe("yunet"), [LOCAL], tmp_path / "w", model_dir=models_dir, dry_run=True)
    assert report.ok and report.plan
    assert any(line.startswith("put ") for line in report.plan)
    assert not (device_home / ".edgeagent").exists()


def test_failed_build_keeps_previous_deployment(device_home: Path, models_dir: Path, tmp_path: Path) -> None:
    recipe = load_recipe("yunet")
    [good] = deploy(recipe, [LOCAL], tmp_path / "w", model_dir=models_dir)
    assert good.ok
    # A bundle whose model ONNX the device cannot load: the build fails, nothing switches.
    prepared = prepare(recipe, tmp_path / "w", model_dir=models_dir)
    model = prepared.bundle.path_of(prepared.bundle.files[0].sha256)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(model.read_bytes()[:5000])
    bad_bundle = write_bundle(recipe, [("model", broken)], tmp_path / "badbundle")
    report = deploy_device(LOCAL, Prepared(bad_bundle, prepared.agent))
    assert not report.ok and "build engine failed" in (report.error or "")
    # the broken model went over the wire before the build failed: the report says so
    assert report.files_sent >= 1 and report.bytes_sent >= 5000
    assert _deployment(device_home, "yunet")["current"] == good.bundle
    lock = device_home / ".edgeagent" / "lock"
    assert not lock.exists(), "the lock must be released after a failure"
    [after] = deploy(recipe, [LOCAL], tmp_path / "w", model_dir=models_dir)
    assert after.ok


def test_rollback_without_history(device_home: Path, models_dir: Path, tmp_path: Path) -> None:
    [report] = deploy(load_recipe("yunet"), [LOCAL], tmp_path / "w", model_dir=models_dir)
    assert report.ok
    with pytest.raises(DeviceError, match="no earlier deployment"):
        rollback("yunet", LOCAL, tmp_path / "w")


def test_json_report_fields(device_home: Path, models_dir: Path, tmp_path: Path) -> None:
    [report] = deploy(load_recipe("yunet"), [LOCAL], tmp_path / "w", model_dir=models_dir)
    data = report.to_json()
    for key in ("device", "ok", "bytes_sent", "files_sent", "files_skipped", "seconds", "engine", "error"):
        assert key in data
    json.dumps(data)


def test_slim_enabled_deploys_the_slim_model(
    device_home: Path, models_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    from edgesdk.graph.io import load_model
    from edgesdk.slim.measure import static_stats

    recipe = override(
        load_recipe("yunet"),
        {"slim.enabled": True, "slim.method": "l1", "slim.ratio": 0.1, "slim.images": 2},
    )
    [report] = deploy(
        recipe, [LOCAL], tmp_path / "w", model_dir=models_dir, slim_images=data_dir / "sample_images"
    )
    assert report.ok, report.error
    slim = report.to_json()["slim"]
    assert (
        slim["method"] == "l1" and slim["reconstructed"] is True
    )  # images turn the refit on and slim["groups_pruned"] > 0
    (f0, f1), (p0, p1) = slim["flops"], slim["params"]
    assert f1 <= 0.9 * f0 and p1 < p0
    deployed = Store(str(device_home / ".edgeagent")).deployment("yunet")["current"]
    [model_file] = (device_home / ".edgeagent" / "bundles" / deployed / "files").iterdir()
    got = static_stats(load_model(model_file))
    assert (got.flops, got.params) == (f1, p1)


def test_slim_needing_images_fails_before_any_device(
    device_home: Path, models_dir: Path, tmp_path: Path
) -> None:
    from edgesdk.errors import PruneError

    recipe = override(load_recipe("yunet"), {"slim.enabled": True, "slim.method": "lasso"})
    with pytest.raises(PruneError, match="no image folder"):
        deploy(recipe, [LOCAL], tmp_path / "w", model_dir=models_dir)
    assert not (device_home / ".edgeagent").exists()


def test_slim_with_a_calibration_of_the_unslimmed_model_is_refused(
    device_home: Path, models_dir: Path, tmp_path: Path
) -> None:
    from edgesdk.errors import CalibrationError

    recipe = override(load_recipe("yunet"), {"slim.enabled": True})
    with pytest.raises(CalibrationError, match="unslimmed model") as err:
        deploy(recipe, [LOCAL], tmp_path / "w", model_dir=models_dir, calibration=tmp_path / "cal")
    assert err.value.hint and "--model" in err.value.hint
    assert not (device_home / ".edgeagent").exists()
