"""Telemetry parsers on recorded real Jetson output (golden cases), INA3221 sysfs trees, the sampler."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any, Callable, Dict

import pytest

from edgeagent.telemetry import (
    TelemetrySampler,
    parse_jetson_clocks,
    parse_nvpmodel,
    parse_tegrastats,
    read_ina3221,
    read_power_config,
)

GOLDEN = Path(__file__).parent / "telemetry"
CASES = sorted(GOLDEN.glob("*/*.json"))


def _parse(parser: str, text: str) -> Any:
    parsers: Dict[str, Callable[[str], Any]] = {
        "nvpmodel": parse_nvpmodel,
        "jetson_clocks": parse_jetson_clocks,
    }
    if parser == "tegrastats":
        return [parse_tegrastats(line) for line in text.splitlines() if line.strip()]
    return parsers[parser](text)


@pytest.mark.parametrize("case", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
def test_golden(case: Path, data_dir: Path) -> None:
    """Each expected JSON beside this file matches the parse of the recorded sample of the same name."""
    golden = json.loads(case.read_text())
    sample = data_dir / "jetson_samples" / case.parent.name / (case.stem + ".txt")
    assert _parse(golden["parser"], sample.read_text()) == golden["expected"]


def test_every_recorded_sample_has_a_golden_case(data_dir: Path) -> None:
    samples = {
        f"{p.parent.name}/{p.stem}"
        for kind in ("tegrastats", "power")
        for p in (data_dir / "jetson_samples" / kind).glob("*.txt")
        if "ina3221" not in p.name  # a sysfs dump: tested as a tree below
    }
    assert samples == {f"{p.parent.name}/{p.stem}" for p in CASES}


# Hand-checked facts, so the golden files are not merely snapshots of the parser.


def test_jetpack6_rails_and_total(data_dir: Path) -> None:
    line = (data_dir / "jetson_samples/tegrastats/orin_nano_8gb_jp6.txt").read_text()
    out = parse_tegrastats(line)
    assert out["timestamp"] == "05-15-2025 18:30:28"
    assert out["power_mw"]["VDD_IN"] == {"current": 17946, "average": 15710}
    assert out["power_total_mw"] == {"current": 17946.0, "average": 15710.0, "source": "VDD_IN"}
    assert out["gpu"] == {"load": 84, "freq_mhz": 713, "gpc_freq_mhz": [713]}
    assert out["cpus"][5] == {"load": 93, "freq_mhz": 247}
    assert out["engines"]["NVDEC"] == {"load": 40, "freq_mhz": 115} and out["engines"]["NVJPG"] is None
    assert out["temperatures_c"]["tj"] == 65.562


def test_jetpack4_rails_without_units(data_dir: Path) -> None:
    nano = parse_tegrastats((data_dir / "jetson_samples/tegrastats/nano_jp4_example.txt").read_text())
    assert nano["power_total_mw"] == {"current": 4520.0, "average": 4680.0, "source": "POM_5V_IN"}
    assert nano["iram_kb"] == {"used": 0, "total": 252, "lfb": 252}
    xavier = parse_tegrastats((data_dir / "jetson_samples/tegrastats/agx_xavier_jp4.2.txt").read_text())
    assert xavier["power_total_mw"]["source"] == "sum"
    assert xavier["power_total_mw"]["current"] == 463 + 618 + 2936 + 0 + 309 + 3306
    assert xavier["gpu"] == {"load": 0, "freq_mhz": None} and xavier["temperatures_c"]["gpu"] == 30.5


def test_agx_orin_unconnected_rails_and_powered_down_sensors(data_dir: Path) -> None:
    out = parse_tegrastats((data_dir / "jetson_samples/tegrastats/agx_orin_64gb_jp5.txt").read_text())
    assert "NC" not in out["power_mw"]
    assert out["power_total_mw"]["current"] == 2340 + 390 + 4025 + 301
    assert out["temperatures_c"]["cv0"] is None and out["temperatures_c"]["cpu"] == 44.562
    assert out["gpu"]["gpc_freq_mhz"] == [0, 0] and len(out["cpus"]) == 12


def test_cores_that_are_off(data_dir: Path) -> None:
    first = (data_dir / "jetson_samples/tegrastats/tx2_4gb_jp4.6.txt").read_text().splitlines()[0]
    out = parse_tegrastats(first)
    assert (
        out["cpus"][1] is None and out["cpus"][2] is None and out["cpus"][0] == {"load": 3, "freq_mhz": 345}
    )
    assert out["power_mw"] == {} and out["power_total_mw"] is None


def test_garbage_does_not_raise() -> None:
    out = parse_tegrastats("tegrastats: command not found")
    assert out["ram_mb"] is None and out["cpus"] == [] and out["power_total_mw"] is None


def test_nvpmodel_and_clocks(data_dir: Path) -> None:
    power = data_dir / "jetson_samples" / "power"
    assert parse_nvpmodel((power / "nano_jp4_nvpmodel_q.txt").read_text()) == {"mode": "5W", "id": 1}
    clocks = parse_jetson_clocks((power / "agx_orin_jp5.0predp_jetson_clocks_show_partial.txt").read_text())
    assert clocks["soc_family"] == "tegra234" and clocks["online_cpus"] == "0-11"
    assert (
        clocks["cpus"]["cpu11"]["current_freq"] == 1190400
        and clocks["cpus"]["cpu0"]["governor"] == "schedutil"
    )
    assert clocks["clocks_pinned"] is False  # MinFreq 115200 != MaxFreq 2201600: jetson_clocks is not active


# --------------------------------------------------------------------------- INA3221 sysfs trees


def _write(root: Path, rel: str, files: Dict[str, str]) -> None:
    folder = root / rel
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text + "\n")


def _hwmon(channels: Dict[int, tuple]) -> Dict[str, str]:
    files = {"name": "ina3221"}
    for ch, (label, mv, ma) in channels.items():
        files[f"in{ch}_label"] = label
        files[f"in{ch}_input"] = str(mv)
        files[f"curr{ch}_input"] = str(ma)
    return files


def test_agx_orin_two_monitors_sum_of_rails(tmp_path: Path) -> None:
    # Layout and the second monitor's noise files as in agx_orin_ina3221_1-0041_sysfs_partial.txt;
    # rail names from the AGX Orin tegrastats sample. Values are made up.
    drivers = "sys/bus/i2c/drivers/ina3221"
    first = _hwmon(
        {1: ("VDD_GPU_SOC", 5000, 468), 2: ("VDD_CPU_CV", 5000, 78), 3: ("VIN_SYS_5V0", 5000, 805)}
    )
    first.update({"in7_label": "sum of shunt voltages", "in7_input": "120"})  # no curr7: not a rail
    _write(tmp_path, f"{drivers}/1-0040/hwmon/hwmon1", first)
    second = _hwmon({1: ("NC", 0, 0), 2: ("VDDQ_VDD2_1V8AO", 1800, 167), 3: ("NC", 0, 0)})
    second.update({"curr2_max_alarm": "0", "curr1_crit_alarm": "0", "uevent": "OF_NAME=ina3221"})
    _write(tmp_path, f"{drivers}/1-0041/hwmon/hwmon2", second)
    _write(tmp_path, f"{drivers}/1-0041", {"name": "ina3221", "power/runtime_status": "active"})
    out = read_ina3221(str(tmp_path))
    assert out is not None
    assert sorted(out["rails"]) == ["VDDQ_VDD2_1V8AO", "VDD_CPU_CV", "VDD_GPU_SOC", "VIN_SYS_5V0"]
    assert out["rails"]["VDD_GPU_SOC"]["power_mw"] == pytest.approx(2340.0)
    assert out["rails"]["VDDQ_VDD2_1V8AO"]["path"].endswith("1-0041/hwmon/hwmon2")
    assert out["total_source"] == "sum"
    assert out["total_mw"] == pytest.approx(2340.0 + 390.0 + 4025.0 + 1800 * 167 / 1000)


def test_orin_nano_total_is_vdd_in(tmp_path: Path) -> None:
    channels = {1: ("VDD_IN", 5080, 3533), 2: ("VDD_CPU_GPU_CV", 5072, 1754), 3: ("VDD_SOC", 5072, 773)}
    _write(tmp_path, "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3", _hwmon(channels))
    out = read_ina3221(str(tmp_path))
    assert out is not None and out["total_source"] == "VDD_IN"
    assert out["total_mw"] == pytest.approx(5080 * 3533 / 1000)


def test_jetpack4_iio_layout(tmp_path: Path) -> None:
    files = {}
    for ch, (name, mv, ma, mw) in enumerate([("POM_5V_IN", 5016, 901, 4520), ("POM_5V_GPU", 5016, 0, 0),
                                             ("POM_5V_CPU", 5016, 215, 1078)]):  # fmt: skip
        files.update({f"rail_name_{ch}": name, f"in_voltage{ch}_input": str(mv), f"in_current{ch}_input": str(ma),
                      f"in_power{ch}_input": str(mw)})  # fmt: skip
    _write(tmp_path, "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0", files)
    out = read_ina3221(str(tmp_path))
    assert out is not None and out["total_source"] == "POM_5V_IN" and out["total_mw"] == 4520.0
    assert out["rails"]["POM_5V_CPU"]["power_mw"] == 1078.0  # the driver's own power reading


def test_no_monitor_is_none(tmp_path: Path) -> None:
    assert read_ina3221(str(tmp_path)) is None


# --------------------------------------------------------------------------- the sampler


def _executable(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_not_a_jetson_is_a_no_op(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    sampler = TelemetrySampler(0.1)
    assert not sampler.available
    with sampler:
        assert not sampler.running
    assert sampler.latest() is None and sampler.samples() == []
    power = sampler.power_summary(0.0, {"infer": (0.0, 1.0)})
    assert power["available"] is False and power["phase_mean_mw"] == {"infer": None}
    assert sampler.thermal_summary()["gpu_load"] is None
    assert read_power_config() == {"nvpmodel": None, "jetson_clocks": None}


def test_sampler_runs_tegrastats_in_a_thread(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in tegrastats (this machine is not a Jetson) that replays a recorded JetPack 6 line.
    line = data_dir / "jetson_samples/tegrastats/orin_nano_8gb_jp6.txt"
    _executable(tmp_path, "tegrastats", f'while true; do cat "{line}"; echo; sleep 0.05; done\n')
    _executable(tmp_path, "nvpmodel", f'cat "{data_dir}/jetson_samples/power/agx_thor_jp7_nvpmodel_q.txt"\n')
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    sampler = TelemetrySampler(0.05)
    assert sampler.command == ["tegrastats", "--interval", "50"]
    t0 = time.monotonic()
    with sampler:
        deadline = time.monotonic() + 5
        while len(sampler.samples()) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
    t1 = time.monotonic()
    assert not sampler.running
    samples = sampler.samples()
    assert len(samples) >= 4 and sampler.latest() == parse_tegrastats(line.read_text())
    power = sampler.power_summary(t0, {"all": (t0, t1), "none": (t1 + 10, t1 + 11)})
    assert power["available"] and power["total_source"] == "VDD_IN"
    assert power["phase_mean_mw"] == {"all": 17946.0, "none": None}
    assert power["rails_mw"]["VDD_SOC"][0] == 3923.0 and len(power["t_s"]) == len(samples)
    thermal = sampler.thermal_summary()
    assert thermal["gpu_freq_mhz"] == {"mean": 713.0, "max": 713.0}
    assert thermal["temperatures_c"]["gpu"] == {"mean": 63.5, "max": 63.5}
    assert read_power_config()["nvpmodel"] == {"mode": "MAXN", "id": 0}


def test_sampler_falls_back_to_ina3221_in_sysfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # e.g. a container with /sys but no tegrastats: the rails are polled directly
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    channels = {1: ("VDD_IN", 5000, 1000), 2: ("VDD_CPU_GPU_CV", 5000, 400), 3: ("VDD_SOC", 5000, 200)}
    _write(tmp_path, "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1", _hwmon(channels))
    sampler = TelemetrySampler(0.02, sysfs_root=str(tmp_path))
    assert sampler.available and sampler.mode == "ina3221"
    t0 = time.monotonic()
    with sampler:
        deadline = time.monotonic() + 5
        while len(sampler.samples()) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert not sampler.running and len(sampler.samples()) >= 3
    power = sampler.power_summary(t0, {"all": (t0, time.monotonic())})
    assert power["total_source"] == "VDD_IN" and power["phase_mean_mw"]["all"] == 5000.0
    assert power["rails_mw"]["VDD_SOC"][0] == 1000.0
    assert TelemetrySampler(0.02, sysfs_root=str(tmp_path / "empty")).mode is None
