"""Pure parsers for Jetson telemetry text: tegrastats lines, ``nvpmodel -q``, ``jetson_clocks --show``,
and the INA3221 power monitors in sysfs.

Formats differ by board and JetPack; the parsers accept all of those recorded in the test data:
JetPack 4 (``POM_5V_IN 4520/4680``, ``GPU 463/463``: mW without a unit), JetPack 5/6
(``VDD_IN 17946mW/15710mW``), upper- and lower-case temperature names, ``GR3D_FREQ 84%@[713]``
(per-GPC list) or ``0%@76`` or ``0%``, CPUs that are ``off``. Nothing here raises on an unknown
token: unknown parts are skipped, missing parts are None.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Any, Dict, List, Optional, Tuple

#: Rails that measure the whole module's input power, in preference order.
TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")
#: Rail names that are not connected ("NC"): never reported, never summed.
UNCONNECTED = ("NC",)

_TIMESTAMP = re.compile(r"^(\d\d-\d\d-\d{4} \d\d:\d\d:\d\d)\s")
_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB(?: \(lfb (\d+)x(\d+)MB\))?")
_SWAP = re.compile(r"\bSWAP (\d+)/(\d+)MB(?: \(cached (\d+)MB\))?")
_IRAM = re.compile(r"\bIRAM (\d+)/(\d+)kB(?:\s*\(lfb (\d+)kB\))?")
_CPU = re.compile(r"\bCPU \[([^\]]*)\]")
_CPU_CORE = re.compile(r"^(\d+)%(?:@(\d+))?$")
_EMC = re.compile(r"\bEMC_FREQ (\d+)%(?:@(\d+))?")
_GR3D = re.compile(r"\bGR3D_FREQ (\d+)%(?:@\[?([\d,]+)\]?)?")
_MTS = re.compile(r"\bMTS fg (\d+)% bg (\d+)%")
_ENGINE = re.compile(r"\b([A-Z][A-Z0-9_]*) (off|\d+%@\d+|\d+)(?=\s|$)")
_NOT_ENGINES = ("RAM", "SWAP", "IRAM", "CPU", "EMC_FREQ", "GR3D_FREQ", "MTS")
_TEMP = re.compile(r"\b([A-Za-z][A-Za-z0-9_]*)@(-?\d+(?:\.\d+)?)C\b")
_RAIL = re.compile(r"\b([A-Za-z][A-Za-z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?=\s|$)")
_SENSOR_OFF = -256.0  # tegrastats prints -256C for a sensor that is powered down


def _int(value: Optional[str]) -> Optional[int]:
    return int(value) if value is not None and value != "" else None


def _load_freq(load: Optional[str], freq: Optional[str]) -> Dict[str, Optional[int]]:
    return {"load": _int(load), "freq_mhz": _int(freq)}


def _cpus(text: str) -> List[Optional[Dict[str, Optional[int]]]]:
    cores: List[Optional[Dict[str, Optional[int]]]] = []
    for item in text.split(","):
        match = _CPU_CORE.match(item.strip())
        cores.append(_load_freq(match.group(1), match.group(2)) if match else None)  # "off" -> None
    return cores


def _engines(line: str) -> Dict[str, Any]:
    engines: Dict[str, Any] = {}
    for name, value in _ENGINE.findall(line):
        if name in _NOT_ENGINES:
            continue
        if value == "off":
            engines[name] = None
        elif "%@" in value:
            load, freq = value.split("%@")
            engines[name] = _load_freq(load, freq)
        else:
            engines[name] = {"load": None, "freq_mhz": int(value)}
    mts = _MTS.search(line)
    if mts:
        engines["MTS"] = {"fg": int(mts.group(1)), "bg": int(mts.group(2))}
    return engines


def _rails(line: str) -> Dict[str, Dict[str, int]]:
    rails: Dict[str, Dict[str, int]] = {}
    for name, current, average in _RAIL.findall(line):
        if name not in UNCONNECTED:
            rails[name] = {"current": int(current), "average": int(average)}
    return rails


def total_power(
    rails: Dict[str, Dict[str, Any]], key: str = "current"
) -> Tuple[Optional[float], Optional[str]]:
    """Module power: the first of :data:`TOTAL_RAILS` present, else the sum of the rails.

    Args:
        rails: rail name -> {key: mW, ...}.
        key: which value to use (``current``/``average`` for tegrastats, ``power_mw`` for sysfs).

    Returns:
        (mW, source) where source is the rail's name or ``"sum"``; (None, None) without rails.
    """
    for name in TOTAL_RAILS:
        if name in rails:
            return float(rails[name][key]), name
    if not rails:
        return None, None
    return float(sum(r[key] for r in rails.values())), "sum"


def parse_tegrastats(line: str) -> Dict[str, Any]:
    """Parse one tegrastats line (any JetPack) into plain data.

    Args:
        line: one output line, with or without the ``MM-DD-YYYY HH:MM:SS`` prefix of newer versions.

    Returns:
        ``timestamp`` (str|None); ``ram_mb`` {used, total, lfb_blocks, lfb_block_mb}; ``swap_mb``
        {used, total, cached}; ``iram_kb`` {used, total, lfb}; ``cpus``: per core {load %, freq_mhz}
        or None when off; ``emc`` and ``gpu`` {load %, freq_mhz} (``gpu.gpc_freq_mhz``: the per-GPC
        list when printed; freq_mhz is its max); ``engines`` (NVENC, NVDEC, VIC, APE, NVJPG…:
        {load, freq_mhz}, None when off; MTS {fg, bg}); ``temperatures_c`` (lower-case sensor ->
        deg C, None for a powered-down sensor); ``power_mw`` rail -> {current, average} mW
        (``NC`` rails left out); ``power_total_mw`` {current, average, source} or None.
        Parts absent from the line are None (or empty).
    """
    out: Dict[str, Any] = {}
    stamp = _TIMESTAMP.match(line)
    out["timestamp"] = stamp.group(1) if stamp else None
    ram = _RAM.search(line)
    out["ram_mb"] = (
        {"used": int(ram.group(1)), "total": int(ram.group(2)), "lfb_blocks": _int(ram.group(3)),
         "lfb_block_mb": _int(ram.group(4))} if ram else None
    )  # fmt: skip
    swap = _SWAP.search(line)
    out["swap_mb"] = (
        {"used": int(swap.group(1)), "total": int(swap.group(2)), "cached": _int(swap.group(3))}
        if swap
        else None
    )
    iram = _IRAM.search(line)
    out["iram_kb"] = (
        {"used": int(iram.group(1)), "total": int(iram.group(2)), "lfb": _int(iram.group(3))}
        if iram
        else None
    )
    cpu = _CPU.search(line)
    out["cpus"] = _cpus(cpu.group(1)) if cpu else []
    emc = _EMC.search(line)
    out["emc"] = _load_freq(emc.group(1), emc.group(2)) if emc else None
    out["gpu"] = _gpu(line)
    out["engines"] = _engines(line)
    temps: Dict[str, Optional[float]] = {}
    for name, value in _TEMP.findall(line):
        celsius = float(value)
        temps[name.lower()] = None if celsius <= _SENSOR_OFF else celsius
    out["temperatures_c"] = temps
    rails = _rails(line)
    out["power_mw"] = rails
    current, source = total_power(rails, "current")
    average, _ = total_power(rails, "average")
    out["power_total_mw"] = (
        None if source is None else {"current": current, "average": average, "source": source}
    )
    return out


def _gpu(line: str) -> Optional[Dict[str, Any]]:
    match = _GR3D.search(line)
    if not match:
        return None
    freqs = [int(f) for f in match.group(2).split(",") if f] if match.group(2) else []
    gpu: Dict[str, Any] = {"load": int(match.group(1)), "freq_mhz": max(freqs) if freqs else None}
    if match.group(2) and "[" in line[match.start() : match.end()]:
        gpu["gpc_freq_mhz"] = freqs
    return gpu


def parse_nvpmodel(text: str) -> Dict[str, Any]:
    """Parse ``nvpmodel -q`` output (a shell prompt or sudo lines around it are ignored).

    Returns:
        ``{"mode": "MAXN", "id": 0}``; either is None when not found.
    """
    mode: Optional[str] = None
    mode_id: Optional[int] = None
    lines = [ln.strip() for ln in text.splitlines()]
    for i, line in enumerate(lines):
        if line.startswith("NV Power Mode:"):
            mode = line.split(":", 1)[1].strip() or None
            following = next((ln for ln in lines[i + 1 :] if ln), "")
            mode_id = int(following) if following.isdigit() else None
            break
    return {"mode": mode, "id": mode_id}


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_PAIR = re.compile(r"(\w+)=(\S+)")
_SOC = re.compile(r"SOC family:(\S+)\s+Machine:(.*)$")
_COMPONENT = re.compile(r"^([A-Za-z][A-Za-z0-9_]*):?\s+(\w+=\S+.*)$")


def _pairs(text: str) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in _PAIR.findall(text):
        out[_CAMEL.sub("_", key).lower()] = int(value) if value.lstrip("-").isdigit() else value
    return out


def parse_jetson_clocks(text: str) -> Dict[str, Any]:
    """Parse ``jetson_clocks --show``.

    Returns:
        ``soc_family``, ``machine``, ``online_cpus`` (e.g. ``"0-11"``), ``power_mode``; ``cpus``:
        name -> {online, governor, min_freq, max_freq, current_freq (kHz, from cpufreq),
        idle_states {state: 0/1}}; ``components``: GPU, EMC, DLA0_CORE, FAN… -> their key=value
        pairs in snake case (GPU/EMC frequencies in Hz as printed); ``clocks_pinned``: True when
        every online CPU (and GPU/EMC when printed) has min_freq == max_freq (what jetson_clocks
        sets), None when no CPU line was found.
    """
    out: Dict[str, Any] = {"soc_family": None, "machine": None, "online_cpus": None, "power_mode": None}
    cpus: Dict[str, Dict[str, Any]] = {}
    components: Dict[str, Dict[str, Any]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        soc = _SOC.search(line)
        if soc:
            out["soc_family"], out["machine"] = soc.group(1), soc.group(2).strip()
        elif line.startswith("Online CPUs:"):
            out["online_cpus"] = line.split(":", 1)[1].strip()
        elif line.startswith("NV Power Mode:"):
            out["power_mode"] = line.split(":", 1)[1].strip()
        elif re.match(r"^cpu\d+:", line):
            name, rest = line.split(":", 1)
            freqs, _, idle = rest.partition("IdleStates:")
            entry = _pairs(freqs)
            entry["online"] = bool(entry.get("online", 1))
            entry["idle_states"] = {k: int(v) if v.isdigit() else v for k, v in _PAIR.findall(idle)}
            cpus[name] = entry
        else:
            comp = _COMPONENT.match(line)
            if comp:
                components[comp.group(1)] = _pairs(comp.group(2))
    out["cpus"], out["components"] = cpus, components
    out["clocks_pinned"] = _pinned(cpus, components)
    return out


def _pinned(cpus: Dict[str, Dict[str, Any]], components: Dict[str, Dict[str, Any]]) -> Optional[bool]:
    online = [c for c in cpus.values() if c.get("online")]
    if not online:
        return None
    checked = online + [components[k] for k in ("GPU", "EMC") if k in components]
    return all(c.get("min_freq") is not None and c.get("min_freq") == c.get("max_freq") for c in checked)


# --------------------------------------------------------------------------- INA3221 in sysfs

HWMON_GLOB = "sys/bus/i2c/drivers/ina3221*/*/hwmon/hwmon*/in*_label"
IIO_GLOB = "sys/bus/i2c/drivers/ina3221x/*/iio:device*/rail_name_*"


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return None


def _number(path: str) -> Optional[float]:
    text = _read(path)
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _hwmon_rails(root: str) -> Dict[str, Dict[str, Any]]:
    """JetPack 5/6 (kernel ina3221 driver): in<N>_label, in<N>_input (mV), curr<N>_input (mA)."""
    rails: Dict[str, Dict[str, Any]] = {}
    for label_path in sorted(glob.glob(os.path.join(root, HWMON_GLOB))):
        folder = os.path.dirname(label_path)
        channel = os.path.basename(label_path)[2:].split("_", 1)[0]
        name = _read(label_path)
        mv = _number(os.path.join(folder, f"in{channel}_input"))
        ma = _number(os.path.join(folder, f"curr{channel}_input"))
        if not name or name in UNCONNECTED or mv is None or ma is None:
            continue  # in7 ("sum of shunt voltages") has no current; NC rails are not connected
        rails[name] = {"voltage_mv": mv, "current_ma": ma, "power_mw": mv * ma / 1000.0, "path": folder}
    return rails


def _iio_rails(root: str) -> Dict[str, Dict[str, Any]]:
    """JetPack 4 (ina3221x IIO driver): rail_name_<N>, in_voltage<N>_input (mV), in_current<N>_input (mA)."""
    rails: Dict[str, Dict[str, Any]] = {}
    for name_path in sorted(glob.glob(os.path.join(root, IIO_GLOB))):
        folder = os.path.dirname(name_path)
        channel = name_path.rsplit("_", 1)[1]
        name = _read(name_path)
        mv = _number(os.path.join(folder, f"in_voltage{channel}_input"))
        ma = _number(os.path.join(folder, f"in_current{channel}_input"))
        mw = _number(os.path.join(folder, f"in_power{channel}_input"))
        if not name or name in UNCONNECTED or mv is None or ma is None:
            continue
        power = mw if mw is not None else mv * ma / 1000.0
        rails[name] = {"voltage_mv": mv, "current_ma": ma, "power_mw": power, "path": folder}
    return rails


def read_ina3221(sysfs_root: str = "/") -> Optional[Dict[str, Any]]:
    """Read every INA3221 rail once from sysfs (paths differ by board and JetPack, hence the globs).

    Args:
        sysfs_root: the folder holding ``sys/`` (``/`` on a device; a fake tree in tests).

    Returns:
        ``{"rails": {name: {voltage_mv, current_ma, power_mw, path}}, "total_mw": float,
        "total_source": "VDD_IN" | "POM_5V_IN" | "sum"}``, or None when no INA3221 is found.
    """
    rails = _hwmon_rails(sysfs_root) or _iio_rails(sysfs_root)
    if not rails:
        return None
    total, source = total_power(rails, "power_mw")
    return {"rails": rails, "total_mw": total, "total_source": source}
