"""Teltonika AVL loader: real hex samples, wiki values field by field, CRC, fuzz, events truth."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routetrace.errors import ParameterError, RoutetraceError, UnknownFormat
from routetrace.fuzzing import MUTATION_KINDS, mutate
from routetrace.loaders import detect_format, load
from routetrace.loaders import teltonika_codec as tc
from routetrace.loaders.teltonika import IO_TABLE, RECORDS_TABLE, sniff_teltonika
from routetrace.testing import assert_count_rule, hash_tree

IMEI = "356307042441013"


def _naive_crc(data: bytes) -> int:
    """Bitwise CRC-16/IBM written independently of the table-driven implementation."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def _hex_messages(path: Path) -> list[tuple[int, bytes]]:
    out = []
    for ln, line in enumerate(path.read_text().splitlines(), 1):
        s = line.strip()
        if s and not s.startswith("#"):
            out.append((ln, bytes.fromhex(s)))
    return out


def _valid_avl_tcp(b: bytes) -> bool:
    """Independent validity check of a TCP AVL frame (preamble, length, CRC, codec)."""
    if len(b) < 12 or b[:4] != b"\0\0\0\0":
        return False
    n = int.from_bytes(b[4:8], "big")
    return (len(b) == 12 + n and _naive_crc(b[8:8 + n]) == int.from_bytes(b[-4:], "big")
            and b[8] in (0x07, 0x08, 0x8E, 0x10))


# --- real data ----------------------------------------------------------------------------


@pytest.fixture
def tdir(realdata_dir: Path) -> Path:
    return realdata_dir / "teltonika"


def test_real_files_sniff_load_count_rule_read_only(tdir: Path) -> None:
    before = hash_tree(tdir)
    for f in sorted(tdir.glob("*.hex")):
        assert detect_format(f).name == "teltonika"
        res = load(f)
        assert_count_rule(res)
        assert res.rejects["reason"].str.len().gt(0).all()
    assert hash_tree(tdir) == before


def test_traccar_valid_frames_decode_broken_are_rejects(tdir: Path) -> None:
    f = tdir / "traccar_TeltonikaProtocolDecoderTest.hex"
    res = load(f)
    recs = res.extra_tables[RECORDS_TABLE]
    msgs = _hex_messages(f)
    valid = {ln: b for ln, b in msgs if _valid_avl_tcp(b)}
    # every valid AVL frame yields exactly its N1 records, in order
    for ln, b in valid.items():
        got = recs[recs["record"].str.startswith(f"line {ln}/")]
        assert len(got) == b[9], f"line {ln}"
    broken = [ln for ln, b in msgs if b[:4] == b"\0\0\0\0" and not (
        len(b) >= 12 and len(b) == 12 + int.from_bytes(b[4:8], "big")
        and _naive_crc(b[8:-4]) == int.from_bytes(b[-4:], "big"))]
    assert len(broken) == 9
    rej = dict(zip(res.rejects["record"], res.rejects["reason"], strict=True))
    for ln in broken:
        assert re.search(r"CRC mismatch|declared data length", rej[f"line {ln}"]), ln
    # the frames right after each broken one still decode (or are commands / logins)
    for ln in broken:
        nxt = min(x for x, _ in msgs if x > ln) if any(x > ln for x, _ in msgs) else None
        if nxt in valid:
            assert (recs["record"].str.startswith(f"line {nxt}/")).any()
    # command frames (codec 12/13) are reported, never positions
    cmd = res.rejects[res.rejects["reason"].str.startswith("command frame, no position")]
    assert len(cmd) == 7
    assert cmd["reason"].str.contains("12749884").any()  # codec 13 driver id text
    assert not recs["record"].isin(cmd["record"]).any()
    # junk byte 'ff' is a reject, IMEI login sets the subject
    assert "not a Teltonika message" in rej["line 100"]
    assert set(recs.loc[recs["transport"] == "tcp", "subject_id"]) == {"123456789012345"}
    assert set(recs.loc[recs["transport"] == "udp", "subject_id"]) == {"357454072713975"}
    # codec 7 (GH3000): 2007 epoch and float coordinates
    gh = recs[recs["codec"] == "7"]
    assert len(gh) == 4 + 2  # samples 32 and 38 (37 is truncated)
    assert (gh["t_utc"] > pd.Timestamp("2007-01-01", tz="UTC")).all()
    # sample 34 of traccar's test is truncated, sample 33 decodes at its known place
    assert res.fixes["lat"].between(-90, 90).all()


def test_alim_zanibekov_broken_frames_and_udp(tdir: Path) -> None:
    f = tdir / "alim-zanibekov_teltonika_test.hex"
    res = load(f)
    recs = res.extra_tables[RECORDS_TABLE]
    text = f.read_text().splitlines()
    must_fail = [i + 2 for i, line in enumerate(text) if line.startswith("# case")
                 and "MustFail" in line]
    assert len(must_fail) == 13
    rej = set(res.rejects["record"])
    assert {f"line {ln}" for ln in must_fail} <= rej
    cmds = res.rejects[res.rejects["reason"].str.startswith("command frame")]
    assert len(cmds) == 7 and cmds["reason"].str.contains("getinfo").any()
    assert len(res.rejects) == 13 + 7
    udp = recs[recs["transport"] == "udp"]
    assert len(udp) == 1 + 1 + 1 + 1 + 4  # cases 22-26
    assert set(udp["imei"]) == {"352093086403655", "352093085698206", "352094089397464"}
    # the 4-record 8E capture with a large variable-length IO element (case 11)
    io = res.extra_tables[IO_TABLE]
    nx = io[io["hex"].notna()]
    assert (nx["hex"].str.len() > 100).any()
    # every decoded record comes from a line that is a valid frame (no partial frames)
    lines = {int(r.split("/")[0].split()[1]) for r in recs["record"]}
    assert not lines & set(must_fail)


_EXP = re.compile(r"(\w+): ('?[\w.-]+'?)")


def _expected(block: str) -> list[dict[str, object]]:
    avl = block[block.index("avl:"): block.index("udpOnly") if "udpOnly" in block else None]
    out = []
    for rec in re.findall(r"\{[^{}]*io: \{[^}]*\}[^{}]*\}", avl):
        io = dict(re.findall(r"'(\d+)': (\d+)", rec[rec.index("io:"): rec.index("}") + 1]))
        fields = {k: v for k, v in _EXP.findall(rec.replace(rec[rec.index("io:"): rec.index("}") + 1], ""))}
        out.append({"io": {int(k): int(v) for k, v in io.items()},
                    **{k: v.strip("'") for k, v in fields.items()}})
    return out


def test_wiki_examples_field_by_field(tdir: Path) -> None:
    f = tdir / "augusto-sb_wiki_examples.hex"
    res = load(f)
    assert len(res.rejects) == 0 and len(res.fixes) == 0  # all are 0,0: no position
    recs = res.extra_tables[RECORDS_TABLE].set_index("record")
    io = res.extra_tables[IO_TABLE]
    lines = f.read_text().splitlines()
    checked = 0
    for i, line in enumerate(lines):
        if not line.startswith("# expected:"):
            continue
        ln = i + 2
        exp = _expected(line)
        assert exp, line
        for k, e in enumerate(exp):
            r = recs.loc[f"line {ln}/rec {k}"]
            assert r["t_utc"] == pd.Timestamp(int(str(e["timestamp"])), unit="ms", tz="UTC")
            assert r["priority"] == int(str(e["priority"]))
            assert r["lat"] == float(str(e["latitude"])) and r["lon"] == float(str(e["longitude"]))
            assert r["alt_m"] == float(str(e["altitude"])) and r["angle_deg"] == float(str(e["angle"]))
            assert r["satellites"] == int(str(e["satellites"]))
            assert r["speed_kmh"] == float(str(e["speed"]))
            assert r["event_io"] == int(str(e["eventIoId"]))
            if "generationType" in e:
                assert r["generation"] == int(str(e["generationType"]))
            got = io[io["record"] == f"line {ln}/rec {k}"]
            assert dict(zip(got["io_id"].astype(int), got["raw"].astype(int), strict=True)) == e["io"]
            assert "zero_position" in r["flags"]
            checked += 1
        if "udpOnly" in line:
            udp = dict(_EXP.findall(line[line.index("udpOnly"):]))
            r = recs.loc[f"line {ln}/rec 0"]
            assert r["udp_packet_id"] == int(udp["packetId"])
            assert r["avl_packet_id"] == int(udp["avlPacketId"])
            assert r["imei"] == bytes.fromhex(udp["imei"].strip("'")).decode()
            assert len(bytes.fromhex(lines[i + 1])) == int(udp["packetLength"]) + 2
    assert checked == 10
    # 0,0 records keep their IO events, flagged, without coordinates
    ev = res.events
    assert len(ev) and ev["flags"].str.contains("zero_position").all() and ev["lat"].isna().all()


def test_crc_against_wiki_frames(tdir: Path) -> None:
    frames = [b for _, b in _hex_messages(tdir / "augusto-sb_wiki_examples.hex") if b[:4] == b"\0" * 4]
    assert len(frames) == 5
    for b in frames:
        n = int.from_bytes(b[4:8], "big")
        assert tc.crc16_ibm(b[8:8 + n]) == int.from_bytes(b[-4:], "big") == _naive_crc(b[8:8 + n])
    buf = b"".join(frames)
    starts, lens, off = [], [], 0
    for b in frames:
        starts.append(off + 8)
        lens.append(len(b) - 12)
        off += len(b)
    many = tc.crc16_ibm_many(np.frombuffer(buf, np.uint8), np.array(starts), np.array(lens))
    assert [int(x) for x in many] == [int.from_bytes(b[-4:], "big") for b in frames]


# --- generated frames: property tests and fuzz -------------------------------------------------

IO_IDS = st.integers(1, 255)
_io = st.one_of(
    st.builds(tc.IoValue, IO_IDS, st.integers(0, 255), st.just(1)),
    st.builds(tc.IoValue, IO_IDS, st.integers(0, 65535), st.just(2)),
    st.builds(tc.IoValue, IO_IDS, st.integers(0, 2**32 - 1), st.just(4)),
    st.builds(tc.IoValue, IO_IDS, st.integers(0, 2**63 - 1), st.just(8)),
)
_records = st.lists(st.builds(
    tc.Record,
    t_ms=st.integers(1_300_000_000_000, 1_900_000_000_000),
    lat=st.integers(-900_000_000, 900_000_000).map(lambda v: v / 1e7),
    lon=st.integers(-1_800_000_000, 1_800_000_000).map(lambda v: v / 1e7),
    alt_m=st.integers(-500, 5000), angle=st.integers(0, 359), sats=st.integers(0, 30),
    speed_kmh=st.integers(0, 250), priority=st.integers(0, 2), event_io=st.integers(0, 255),
    io=st.lists(_io, max_size=6),
), min_size=1, max_size=4)
_codec = st.sampled_from([tc.CODEC_8, tc.CODEC_8E, tc.CODEC_16])


def _frame(records: list[tc.Record], codec: int, udp: bool) -> bytes:
    return tc.encode_udp(records, IMEI, codec=codec) if udp else tc.encode_tcp_frame(records, codec)


@settings(max_examples=1500, deadline=None, derandomize=True)
@given(records=_records, codec=_codec, udp=st.booleans())
def test_roundtrip_generated_frames(records: list[tc.Record], codec: int, udp: bool) -> None:
    b = _frame(records, codec, udp)
    segs = tc.segment_binary(b)
    assert [s[0] for s in segs] == ["udp" if udp else "tcp"]
    d = tc.decode_messages(b, [(k, s, e, f"offset {s}") for k, s, e in segs])
    assert not d.rejects and d.n_records == len(records)
    flat = {w: [v for pair in zip(d.io_id[w].tolist(), d.io_raw[w].tolist(), strict=True)
                for v in pair] for w in (1, 2, 4, 8)}
    for r, h, c in zip(records, d.H.tolist(), d.counts.tolist(), strict=True):
        assert tuple(h[:9]) == (r.t_ms, r.priority, round(r.lon * 1e7), round(r.lat * 1e7), r.alt_m,
                                r.angle, r.sats, r.speed_kmh, r.event_io)
        for wi, w in enumerate((1, 2, 4, 8)):
            got = flat[w][: 2 * c[wi]]
            del flat[w][: 2 * c[wi]]
            assert got == [v for x in r.io if x.width == w for v in (x.io_id, x.value)]


@settings(max_examples=1500, deadline=None, derandomize=True)
@given(records=_records, codec=_codec, bit=st.integers(0, 10**9))
def test_single_flipped_bit_is_caught(records: list[tc.Record], codec: int, bit: int) -> None:
    b = bytearray(tc.encode_tcp_frame(records, codec))
    i = bit % (len(b) * 8)
    b[i // 8] ^= 1 << (i % 8)
    buf, msgs, bad = tc.hex_lines(bytes(b).hex())
    d = tc.decode_messages(buf, msgs)
    assert d.n_records == 0 and len(d.rejects) + len(bad) == 1


@settings(max_examples=7000, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.lists(st.tuples(_records, _codec, st.booleans()), min_size=1, max_size=3),
       ops=st.lists(st.tuples(st.sampled_from(MUTATION_KINDS), st.integers(0, 1 << 30),
                              st.integers(0, 1 << 30)), max_size=4))
def test_fuzz_decoder_never_raises_and_accounts_for_bytes(frames: list[tuple[list[tc.Record], int, bool]],
                                                          ops: list[tuple[str, int, int]]) -> None:
    clean = tc.encode_login(IMEI) + b"".join(_frame(r, c, u) for r, c, u in frames)
    blob = mutate(clean, ops, other=clean[::-1])
    segs = tc.segment_binary(blob)
    # segments tile the buffer exactly: every byte belongs to one message or junk span
    assert [s[1] for s in segs] == [0, *[s[2] for s in segs[:-1]]] if segs else blob == b""
    assert not segs or segs[-1][2] == len(blob)
    d = tc.decode_messages(blob, [(k, s, e, f"offset {s}") for k, s, e in segs])
    n_avl_msgs = len(set(d.rec_msg))
    assert n_avl_msgs + len(d.rejects) + len(d.commands) + len(d.logins) == len(segs)
    if not ops:
        assert d.n_records == sum(len(r) for r, _, _ in frames) and not d.rejects


_FUZZ_TMP = Path(tempfile.mkdtemp(prefix="routetrace-teltonika-fuzz-"))


@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.lists(st.tuples(_records, _codec, st.booleans()), min_size=1, max_size=3),
       ops=st.lists(st.tuples(st.sampled_from(MUTATION_KINDS), st.integers(0, 1 << 30),
                              st.integers(0, 1 << 30)), min_size=1, max_size=3),
       as_hex=st.booleans(), keep=st.booleans())
def test_fuzz_loader_gives_rows_or_loader_error(frames: list[tuple[list[tc.Record], int, bool]],
                                                ops: list[tuple[str, int, int]], as_hex: bool,
                                                keep: bool) -> None:
    msgs = [tc.encode_login(IMEI)] + [_frame(r, c, u) for r, c, u in frames]
    if as_hex:
        data = mutate("\n".join(m.hex() for m in msgs).encode(), ops)
    else:
        data = mutate(b"".join(msgs), ops)
    p = _FUZZ_TMP / "capture.bin"
    p.write_bytes(data)
    try:
        res = load(p, format="teltonika", options={"keep_damaged": keep})
    except RoutetraceError as exc:
        assert not str(exc).startswith("internal"), exc
        return
    assert_count_rule(res)


# --- events from a generated capture match the generator's truth ----------------------------


def _journey(rng: np.random.Generator) -> tuple[bytes, pd.DataFrame]:
    """A lorry capture (login + 8E frames) and the true ignition/door/refuel edges."""
    t0 = 1_761_500_000_000
    n = 400
    t = t0 + np.cumsum(rng.integers(5_000, 60_000, n))
    ign = np.zeros(n, dtype=int)
    door = np.zeros(n, dtype=int)
    for a, b in ((20, 120), (150, 300), (320, 390)):
        ign[a:b] = 1
    for a, b in ((125, 130), (305, 306), (395, 399)):
        door[a:b] = 1
    fuel = np.round(90 - np.arange(n) * 0.05, 1)
    fuel[200:] += 30.0  # refuel at record 200
    odo = 1_000_000 + np.arange(n) * 400
    recs = [tc.Record(t_ms=int(t[i]), lat=50.9 + i * 1e-4, lon=4.2 + i * 1e-4, sats=9,
                      speed_kmh=60 * int(ign[i]), event_io=239 if i and ign[i] != ign[i - 1] else 0,
                      io=[tc.IoValue(239, int(ign[i]), 1), tc.IoValue(2, int(door[i]), 1),
                          tc.IoValue(89, round(fuel[i]), 1), tc.IoValue(16, int(odo[i]), 4),
                          tc.IoValue(66, 24_000, 2)])
            for i in range(n)]
    frames = [tc.encode_tcp_frame(recs[i: i + 7]) for i in range(0, n, 7)]
    truth = []
    for arr, on, off in ((ign, "ignition_on", "ignition_off"), (door, "door_open", "door_close")):
        for i in np.flatnonzero(np.diff(arr)) + 1:
            truth.append((pd.Timestamp(int(t[i]), unit="ms", tz="UTC"), on if arr[i] else off))
    truth.append((pd.Timestamp(int(t[200]), unit="ms", tz="UTC"), "refuel"))
    ev = pd.DataFrame(truth, columns=["t_utc", "kind"]).sort_values(["t_utc", "kind"])
    return tc.encode_login(IMEI) + b"".join(frames), ev.reset_index(drop=True)


def test_events_from_generated_capture_match_truth(tmp_path: Path) -> None:
    blob, truth = _journey(np.random.default_rng(3))
    # corrupt one frame in the middle: its records are lost (rejected), the rest decodes
    p = tmp_path / "lorry.bin"
    p.write_bytes(blob)
    res = load(p, options={"door_input": 2, "subjects": {IMEI: "lorry 1-ABC-123"}})
    assert_count_rule(res)
    assert res.records_read == 400 and len(res.fixes) == 400
    assert set(res.fixes["subject_id"]) == {"lorry 1-ABC-123"}
    kinds = ["ignition_on", "ignition_off", "door_open", "door_close", "refuel", "fuel_drop"]
    got = res.events[res.events["kind"].isin(kinds)][["t_utc", "kind"]].astype({"kind": "string"})
    got = got.sort_values(["t_utc", "kind"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, truth, check_dtype=False)
    derived = res.events[res.events["kind"].isin(kinds)]
    assert derived["flags"].str.contains("derived").all()
    assert not res.events["kind"].eq("odometer_jump").any()
    # door on another input: no door events; unknown input is a parameter error
    cli = load(p, options={"door_input": "2"})  # as --option door_input=2 gives it
    assert cli.events["kind"].isin(["door_open", "door_close"]).sum() == \
        res.events["kind"].isin(["door_open", "door_close"]).sum() > 0
    res1 = load(p, options={"door_input": 1})
    assert not res1.events["kind"].isin(["door_open", "door_close"]).any()
    with pytest.raises(ParameterError):
        load(p, options={"door_input": 7})


def test_binary_resync_after_corruption_and_odometer_jump(tmp_path: Path) -> None:
    blob, _ = _journey(np.random.default_rng(4))
    segs = tc.segment_binary(blob)
    _, s, _e = segs[10]
    bad = bytearray(blob)
    bad[s + 30] ^= 0xFF  # CRC now fails
    bad[s + 5: s + 8] = b"\x7f\x00\x00"  # and the declared length is absurd
    p = tmp_path / "c.bin"
    p.write_bytes(bytes(bad) + b"\x00\x00\x00")  # trailing garbage
    res = load(p)
    assert_count_rule(res)
    assert len(res.fixes) == 400 - 7
    assert res.rejects["record"].tolist()[0] == f"offset {s}"
    # odometer jump: a 50 km step in one record
    recs = [tc.Record(t_ms=1_761_500_000_000 + i * 30_000, lat=51.0, lon=4.0, sats=8,
                      io=[tc.IoValue(16, 1_000_000 + i * 500 + (50_000 if i >= 5 else 0), 4)])
            for i in range(10)]
    q = tmp_path / "odo.bin"
    q.write_bytes(tc.encode_tcp_frame(recs))
    jumps = load(q).events.query("kind == 'odometer_jump'")
    assert jumps["record"].tolist() == ["offset 0/rec 5"] and jumps["value"].iloc[0] == 50_500


def test_sniffer_is_specific(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("lat,lon,time\n51.0,3.8,2025-10-24T20:00:00Z\n")
    (tmp_path / "hashes.txt").write_text("deadbeef" * 8 + "\n" + "00" * 32 + "\n")
    for f in tmp_path.iterdir():
        assert not sniff_teltonika(f, f.read_bytes())
    (tmp_path / "b.bin").write_bytes(bytes(range(256)))
    with pytest.raises(UnknownFormat):
        load(tmp_path / "b.bin")
    rec = [tc.Record(t_ms=1_761_500_000_000, lat=51.0, lon=4.0)]
    for name, data in (("c.bin", tc.encode_tcp_frame(rec)), ("d.bin", tc.encode_login(IMEI)
                                                               + tc.encode_tcp_frame(rec)),
                       ("e.bin", tc.encode_udp(rec, IMEI)), ("f.hex", (tc.encode_udp(rec, IMEI).hex()
                                                                       + "\n").encode())):
        (tmp_path / name).write_bytes(data)
        assert detect_format(tmp_path / name).name == "teltonika", name


def test_sample_case_lorry_captures_match_scenario_events(tmp_path: Path) -> None:
    from routetrace.samples import generate
    from routetrace.samples.scenario import build_scenario

    files = [f for f in generate(tmp_path, seed=7) if f.path.endswith("_fmb125.bin")]
    assert {f.subject_id for f in files} == {"lorry-1", "lorry-2"}
    sc = build_scenario(7)
    kinds = ["ignition_on", "ignition_off", "door_open", "door_close"]
    for f in files:
        assert detect_format(tmp_path / f.path).name == "teltonika"
        res = load(tmp_path / f.path, subject_id=f.subject_id, options={"door_input": 2})
        assert_count_rule(res)
        got = res.events[res.events["kind"].isin(kinds)][["t_utc", "kind"]]
        exp = sc.events[(sc.events["subject_id"] == f.subject_id) & sc.events["kind"].isin(kinds)]
        pd.testing.assert_frame_equal(
            got.sort_values(["t_utc", "kind"]).reset_index(drop=True).astype({"kind": str}),
            exp[["t_utc", "kind"]].sort_values(["t_utc", "kind"]).reset_index(drop=True)
            .astype({"kind": str}), check_dtype=False)
        assert len(res.fixes) == res.records_read


# --- damaged frames kept by option (issue #19) -------------------------------------------------


def test_traccar_damaged_frames_keep_whole_records_by_option(tdir: Path) -> None:
    f = tdir / "traccar_TeltonikaProtocolDecoderTest.hex"
    default = load(f)
    res = load(f, options={"keep_damaged": "true"})
    assert_count_rule(res)
    recs = res.extra_tables[RECORDS_TABLE]
    kept = recs[recs["flags"].str.contains("damaged_frame")]
    frames = sorted({int(r.split("/")[0].split()[1]) for r in kept["record"]})
    # the six AVL frames Traccar decodes although their CRC or length check fails
    assert frames == [54, 58, 70, 80, 86, 94]
    assert set(default.rejects["record"]) - set(res.rejects["record"]) == {f"line {ln}" for ln in frames}
    # a command frame with a bad CRC (line 42) and the photo frames stay rejects
    assert {"line 42", "line 112", "line 114"} <= set(res.rejects["record"])
    # the flag names its frame: locator + the failed check in the fix's extra
    fx = res.fixes[res.fixes["flags"].str.contains("damaged_frame")]
    assert len(fx) and fx["extra"].str.contains('"frame_error":"(?:CRC mismatch|declared data length)',
                                                 regex=True).all()
    # default unchanged: every damaged frame is one reject, no record flagged
    assert not default.extra_tables[RECORDS_TABLE]["flags"].str.contains("damaged_frame").any()
    assert res.records_read == default.records_read - 6 + len(kept)


def test_damaged_generated_frames_keep_intact_records(tmp_path: Path) -> None:
    recs = [tc.Record(t_ms=1_761_500_000_000 + i * 30_000, lat=51.0 + i * 1e-3, lon=4.0, sats=9,
                      io=[tc.IoValue(239, 1, 1), tc.IoValue(16, 1000 * i, 4)]) for i in range(5)]
    good = tc.encode_tcp_frame(recs, tc.CODEC_8E)
    bad_crc = bytearray(good)
    bad_crc[-1] ^= 0x55  # only the CRC field is wrong: all 5 records whole
    size = (len(good) - 12 - 3) // 5  # bytes per record
    truncated = good[: 8 + 2 + 2 * size + size // 2]  # cut inside record 2: 0 and 1 whole
    p = tmp_path / "damaged.hex"
    p.write_text("\n".join(b.hex() for b in (tc.encode_login(IMEI), bytes(bad_crc), truncated, good)) + "\n")
    strict = load(p)
    assert_count_rule(strict)
    assert len(strict.fixes) == 5 and strict.rejects["record"].tolist() == ["line 2", "line 3"]
    res = load(p, options={"keep_damaged": True})
    assert_count_rule(res)
    flagged = res.fixes[res.fixes["flags"].str.contains("damaged_frame")]
    assert flagged["record"].str.split("/").str[0].value_counts().to_dict() == {"line 2": 5, "line 3": 2}
    # the truncated frame's lost records are one reject naming the frame and what was kept
    assert res.rejects["record"].tolist() == ["line 3"]
    assert re.search(r"declared data length .*records 0-1 of 5 kept .*records 2-4 lost",
                     res.rejects["reason"].iloc[0])
    assert res.records_read == 5 + 5 + 2 + 1
    with pytest.raises(ParameterError):
        load(p, options={"keep_damaged": "maybe"})


# --- alarms, identifiers, cell, HDOP, signed values, models (issue #19) ------------------------


def _io_records(res: object, io_id: int, raw: int | None = None) -> set[str]:
    io = res.extra_tables[IO_TABLE]  # type: ignore[attr-defined]
    sel = io["io_id"] == io_id
    if raw is not None:
        sel &= io["raw"] == raw
    return set(io.loc[sel, "record"].astype(str))


def test_real_captures_crash_unplug_events_and_hdop_accuracy(tdir: Path) -> None:
    counts = {}
    for f in sorted(tdir.glob("*.hex")):
        res = load(f)
        assert_count_rule(res)
        ev = res.events
        crash = set(ev.loc[ev["kind"] == "crash", "record"])
        assert crash == _io_records(res, 247), f.name
        assert set(ev.loc[ev["kind"] == "unplug", "record"]) == _io_records(res, 252, 1), f.name
        counts[f.name] = len(crash)
        # h_acc_m = HDOP x 5 m for every fix whose record carries an HDOP above 0
        io = res.extra_tables[IO_TABLE]
        hd_rows = io[(io["io_id"] == 182) & (io["raw"] > 0)]
        hd = pd.Series(hd_rows["raw"].astype(float).to_numpy(), index=hd_rows["record"].astype(str))
        fx = res.fixes.set_index("record")
        with_hdop = fx.index.intersection(hd.index)
        assert fx.loc[with_hdop, "h_acc_m"].notna().all(), f.name
        np.testing.assert_allclose(fx.loc[with_hdop, "h_acc_m"], hd[with_hdop] * 0.1 * 5.0)
        assert fx.drop(with_hdop)["h_acc_m"].isna().all()
        assert "HDOP (IO 182" in res.source["time_basis"].iloc[0]
    assert counts["traccar_TeltonikaProtocolDecoderTest.hex"] == 13
    res = load(tdir / "traccar_TeltonikaProtocolDecoderTest.hex")
    ev = res.events
    assert (ev["kind"] == "unplug").sum() == 1 and (ev["kind"] == "alarm").sum() == 1
    assert ev.loc[ev["kind"] == "crash", "text"].str.startswith("IO 247 crash_detection = ").all()
    # identifiers and the serving cell are events with the decoded id as text
    kinds = set(ev["kind"])
    assert {"vin", "driver_id", "sim_iccid", "ble_tags", "ble_beacons", "cell_tower"} <= kinds
    vin_hex = res.extra_tables[IO_TABLE].query("io_id == 256")["hex"].dropna()
    assert set(ev.loc[ev["kind"] == "vin", "text"]) == {bytes.fromhex(h).decode() for h in vin_hex}
    cells = ev[ev["kind"] == "cell_tower"]
    assert cells["text"].str.fullmatch(r"LAC \d+ cell \d+( \(LTE\))?").all()
    # codec 7 (GH3000) states its cell in the location block, not in IO elements
    gh_cell = set(res.fixes.loc[res.fixes["extra"].str.contains('"codec":"7"')
                                & res.fixes["extra"].str.contains('"lac":'), "record"])
    assert gh_cell and gh_cell & set(cells["record"])
    # accelerometer axes and EYE temperature are signed (Traccar's readShort)
    io = res.extra_tables[IO_TABLE]
    eye = io[io["io_id"] == 10800]
    assert eye["value"].round(2).tolist() == [-11.87]  # Traccar's test expects eyeTemp1 -11.87
    axes = io[io["io_id"].isin([17, 18, 19])]
    assert (axes["value"] < 0).any() and (axes["value"].abs() < 32768).all()


def _nx(io_id: int, data: bytes) -> tc.IoValue:
    return tc.IoValue(io_id, data, 0)


def test_generated_alarm_identifier_cell_and_hdop(tmp_path: Path) -> None:
    t0 = 1_761_500_000_000
    base = [tc.IoValue(239, 1, 1), tc.IoValue(182, 12, 2), tc.IoValue(205, 4101, 2),
            tc.IoValue(206, 33, 2)]
    ibutton = 0x0100000012345678
    beacons = bytes([0x01, 0x21]) + bytes(range(16)) + b"\x00\x07\x00\x09\xc4"
    rows = [
        [tc.IoValue(247, 1, 1)],                                     # 0 crash
        [tc.IoValue(252, 1, 1), tc.IoValue(78, ibutton, 8)],         # 1 unplug, driver
        [tc.IoValue(252, 0, 1), tc.IoValue(78, ibutton, 8)],         # 2 battery back: no event
        [tc.IoValue(246, 1, 1), tc.IoValue(249, 1, 1), _nx(256, b"ABCDEFGH123456789")],
        [tc.IoValue(236, 1, 1), tc.IoValue(17, 0xFF9C, 2), tc.IoValue(10800, 0xFB50, 2),
         _nx(385, beacons)],
        [tc.IoValue(182, 0, 2), tc.IoValue(78, 0, 8), tc.IoValue(205, 4102, 2)],
    ]
    recs = [tc.Record(t_ms=t0 + i * 60_000, lat=51.0, lon=4.0 + i * 1e-3, sats=9,
                      event_io=io[0].io_id, io=[*[x for x in base if x.io_id not in
                                                   {y.io_id for y in io}], *io])
            for i, io in enumerate(rows)]
    p = tmp_path / "alarms.bin"
    p.write_bytes(tc.encode_login(IMEI) + tc.encode_tcp_frame(recs, tc.CODEC_8E))
    res = load(p, options={"uere_m": "4"})
    assert_count_rule(res)
    ev = res.events.set_index(["record", "kind"])
    rec = "offset 17/rec {}".format
    for i, kind, code in ((0, "crash", 1), (1, "unplug", 1), (3, "towing", 1), (3, "jamming", 1),
                          (4, "alarm", 1)):
        assert ev.loc[(rec(i), kind), "value"] == code, kind
    assert (res.events["kind"] == "unplug").sum() == 1  # 252 = 0 (battery present) is no alarm
    assert ev.loc[(rec(0), "crash"), "text"] == "IO 247 crash_detection = 1: crash detected (device is calibrated)"
    # identifiers: when first seen and when they change (0 = no iButton: no event)
    drv = res.events[res.events["kind"] == "driver_id"]
    assert drv["record"].tolist() == [rec(1)]
    assert drv["text"].iloc[0].startswith("0100000012345678 (byte-reversed")
    assert ev.loc[(rec(3), "vin"), "text"] == "ABCDEFGH123456789"
    assert ev.loc[(rec(4), "ble_beacons"), "text"] == "000102030405060708090a0b0c0d0e0f:7:9"
    cells = res.events[res.events["kind"] == "cell_tower"]
    assert cells["record"].tolist() == [rec(0), rec(5)]
    assert cells["text"].tolist() == ["LAC 33 cell 4101", "LAC 33 cell 4102"]
    assert cells["lat"].notna().all()  # the record's own GPS position, never the cell's
    # HDOP 1.2 x 4 m; HDOP 0 (no value) gives no accuracy
    h = res.fixes.set_index("record")["h_acc_m"]
    assert h[[rec(i) for i in range(5)]].round(6).eq(4.8).all() and pd.isna(h[rec(5)])
    assert "x 4 m" in res.source["time_basis"].iloc[0]
    io = res.extra_tables[IO_TABLE]
    assert io.loc[io["io_id"] == 17, "value"].tolist() == [-100.0]
    assert io.loc[io["io_id"] == 10800, "value"].round(2).tolist() == [-12.0]
    with pytest.raises(ParameterError):
        load(p, options={"uere_m": "-1"})


def test_model_option_fm6xx_does_not_read_fmb_fuel_ids(tmp_path: Path) -> None:
    recs = [tc.Record(t_ms=1_761_500_000_000 + i * 60_000, lat=51.0, lon=4.0, sats=9,
                      io=[tc.IoValue(89, 80 - 10 * i, 1), tc.IoValue(701, 0xFF38, 2)])
            for i in range(3)]
    p = tmp_path / "fm6.bin"
    p.write_bytes(tc.encode_tcp_frame(recs, tc.CODEC_8E))
    fmb = load(p)  # default model FMB: IO 89 is the LV-CAN fuel level in %
    assert (fmb.events["kind"] == "fuel_level").sum() == 3
    assert fmb.events["kind"].eq("fuel_drop").sum() == 2
    fm6 = load(p, options={"model": "FMB640"})
    assert_count_rule(fm6)
    assert not fm6.events["kind"].isin(["fuel_level", "fuel_drop"]).any()
    io = fm6.extra_tables[IO_TABLE]
    assert io.loc[io["io_id"] == 89, "name"].isna().all()  # kept raw, unnamed
    assert io.loc[io["io_id"] == 701, "value"].round(2).tolist() == [-20.0] * 3
    with pytest.raises(ParameterError, match="unknown Teltonika model"):
        load(p, options={"model": "FMX999"})


def test_accelerometer_axes_and_eye_temperature_are_signed(tmp_path: Path) -> None:
    io = [tc.IoValue(17, 0xFF9C, 2), tc.IoValue(18, 0x0064, 2), tc.IoValue(19, 0xFC18, 2),
          tc.IoValue(10800, 0xFB50, 2), tc.IoValue(10801, 0x0960, 2)]
    p = tmp_path / "axes.bin"
    p.write_bytes(tc.encode_tcp_frame([tc.Record(t_ms=1_761_500_000_000, lat=51.0, lon=4.0, sats=9,
                                                 io=io)], tc.CODEC_8E))
    got = load(p).extra_tables[IO_TABLE].set_index("io_id")
    assert got.loc[[17, 18, 19], "value"].tolist() == [-100.0, 100.0, -1000.0]
    assert got.loc[[17, 18, 19], "unit"].tolist() == ["mG"] * 3
    assert got.loc[[10800, 10801], "value"].round(2).tolist() == [-12.0, 24.0]
    assert got.loc[10800, "unit"] == "degC"


# --- the sample writer's own encoder (issue #16) ------------------------------------------------


def test_sample_writer_has_its_own_encoder() -> None:
    import ast

    import routetrace.samples.write_teltonika as wt

    tree = ast.parse(Path(wt.__file__).read_text())
    imported = {(n.module or "") for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any("loaders" in m for m in imported), imported


@settings(max_examples=300, deadline=None, derandomize=True)
@given(records=st.lists(st.builds(
    tc.Record, t_ms=st.integers(1_300_000_000_000, 1_900_000_000_000),
    lat=st.integers(-900_000_000, 900_000_000).map(lambda v: v / 1e7),
    lon=st.integers(-1_800_000_000, 1_800_000_000).map(lambda v: v / 1e7),
    alt_m=st.integers(-500, 5000), angle=st.integers(0, 359), sats=st.integers(0, 30),
    speed_kmh=st.integers(0, 250), priority=st.integers(0, 2), event_io=st.integers(0, 65535),
    io=st.lists(_io, max_size=6)), min_size=1, max_size=45))
def test_sample_encoder_agrees_with_codec_and_reads_back(records: list[tc.Record]) -> None:
    from routetrace.samples import write_teltonika as wt

    mine = [wt.AvlRecord(t_ms=r.t_ms, lat=r.lat, lon=r.lon, alt_m=r.alt_m, angle=r.angle,
                         sats=r.sats, speed_kmh=r.speed_kmh, priority=r.priority,
                         event_io=r.event_io, io=[(x.io_id, int(x.value), x.width) for x in r.io])
            for r in records]
    blob = wt.encode_capture(IMEI, mine)
    # two independent implementations write the same bytes
    expect = tc.encode_login(IMEI) + b"".join(tc.encode_tcp_frame(records[a:a + 20], tc.CODEC_8E)
                                              for a in range(0, len(records), 20))
    assert blob == expect
    segs = tc.segment_binary(blob)
    d = tc.decode_messages(blob, [(k, s, e, f"offset {s}") for k, s, e in segs])
    assert not d.rejects and d.n_records == len(records)
    assert d.H[:, 0].tolist() == [r.t_ms for r in records]


@settings(max_examples=1500, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.lists(st.tuples(_records, _codec, st.booleans()), min_size=1, max_size=3),
       ops=st.lists(st.tuples(st.sampled_from(MUTATION_KINDS), st.integers(0, 1 << 30),
                              st.integers(0, 1 << 30)), min_size=1, max_size=4),
       as_hex=st.booleans())
def test_fuzz_keep_damaged_accounts_for_every_message(frames: list[tuple[list[tc.Record], int, bool]],
                                                      ops: list[tuple[str, int, int]],
                                                      as_hex: bool) -> None:
    msgs = [tc.encode_login(IMEI)] + [_frame(r, c, u) for r, c, u in frames]
    if as_hex:
        buf, segs, _ = tc.hex_lines(mutate("\n".join(m.hex() for m in msgs).encode(), ops)
                                      .decode("latin-1"))
    else:
        blob = mutate(b"".join(msgs), ops)
        buf = blob
        segs = [(k, s, e, f"offset {s}") for k, s, e in tc.segment_binary(blob)]
    d = tc.decode_messages(buf, segs, keep_damaged=True)
    strict = tc.decode_messages(buf, segs)
    # every message is records, a reject, a command or a login (a cut frame: records + reject)
    seen = set(d.msg_loc) | {r for r, _ in d.rejects} | {c[0] for c in d.commands} | \
        {x for x, _ in d.logins}
    assert seen == {s[3] for s in segs}
    assert not set(d.msg_loc) & {r for r, _ in d.rejects} - {
        m for m, i in zip(d.msg_loc, d.msg_info, strict=True) if i.get("damaged")}
    # keeping damaged frames never loses a record the strict decoder keeps
    assert d.n_records >= strict.n_records


def test_io_table_is_lean_and_every_row_resolves_to_its_record(tmp_path: Path) -> None:
    """teltonika_io holds no time or subject of its own: its ``record`` is dictionary-encoded
    with the records table's locators in row order (code = row there, also after a record
    rejected for its time), compact dtypes, and byte strings in a dictionary ``hex``."""
    t0 = 1_761_500_000_000
    beacons = bytes([0x01, 0x21]) + bytes(range(16)) + b"\x00\x07\x00\x09\xc4"
    ios = [[tc.IoValue(239, 0, 1), tc.IoValue(66, 27_800, 2)],
           [tc.IoValue(239, 1, 1)],  # implausible time: rejected, not in either table
           [tc.IoValue(239, 1, 1), _nx(385, beacons), tc.IoValue(16, 12_345, 4)],
           [tc.IoValue(239, 0, 1), tc.IoValue(78, 0x0100000012345678, 8)]]
    recs = [tc.Record(t_ms=t0 + i * 60_000 if i != 1 else 1_000, lat=51.0, lon=4.0, sats=9,
                      io=io) for i, io in enumerate(ios)]
    p = tmp_path / "lean.bin"
    p.write_bytes(tc.encode_login(IMEI) + tc.encode_tcp_frame(recs, tc.CODEC_8E))
    res = load(p)
    assert_count_rule(res)
    io, rt = res.extra_tables[IO_TABLE], res.extra_tables[RECORDS_TABLE]
    assert "t_utc" not in io.columns and "subject_id" not in io.columns
    assert {c: str(io[c].dtype) for c in ("io_id", "width", "raw")} == {
        "io_id": "uint16", "width": "uint16", "raw": "Int64"}
    for c in ("source_id", "record", "name", "unit", "hex"):
        assert isinstance(io[c].dtype, pd.CategoricalDtype), c
    assert io["record"].cat.categories.tolist() == rt["record"].tolist()
    assert rt["record"].tolist() == ["offset 17/rec 0", "offset 17/rec 2", "offset 17/rec 3"]
    codes = io["record"].cat.codes.to_numpy()
    assert (rt["record"].to_numpy()[codes] == io["record"].astype(str).to_numpy()).all()
    assert io.groupby("record", observed=True).size().tolist() == [2, 3, 2]
    joined = io.astype({"record": str}).merge(rt.astype({"record": str})[["record", "t_utc"]],
                                              on="record", how="left", validate="many_to_one")
    assert joined["t_utc"].notna().all() and len(joined) == len(io)
    bytes_row = io[io["io_id"] == 385].iloc[0]
    assert pd.isna(bytes_row["raw"]) and bytes_row["width"] == len(beacons)
    assert bytes_row["hex"] == beacons.hex() and io["hex"].notna().sum() == 1
    assert io.loc[io["io_id"] == 16, "raw"].tolist() == [12_345]
    assert io.loc[io["io_id"] == 78, "raw"].tolist() == [0x0100000012345678]


def test_per_row_texts_built_once_per_distinct_value_match_a_plain_rendering(tmp_path: Path) -> None:
    """The fixes' ``extra``, the value and edge events' ``text``/``extra`` and the records'
    ``flags`` are built per distinct header / value and taken in Arrow (issue 21): every row
    equals the plain per-row rendering, over two IMEIs, varied priority, satellites, event
    IO, a 0,0 record and a record out of range."""
    t0 = 1_761_500_000_000
    other = "356307042441021"

    def recs(k0: int) -> list[tc.Record]:
        return [tc.Record(t_ms=t0 + (k0 + i) * 30_000, lat=0.0 if i == 3 else 95.0 if i == 5 else 51.0 + i * 1e-4,
                          lon=0.0 if i == 3 else 4.0, sats=(i * 3) % 11, priority=i % 3,
                          event_io=239 if i % 4 == 0 else 0,
                          io=[tc.IoValue(239, (i // 2) % 2, 1), tc.IoValue(66, 24_000 + 1_500 * (i % 3), 2)])
                for i in range(12)]
    p = tmp_path / "two.bin"
    p.write_bytes(tc.encode_login(IMEI) + tc.encode_tcp_frame(recs(0), tc.CODEC_8E)
                  + tc.encode_login(other) + tc.encode_tcp_frame(recs(100), tc.CODEC_8E))
    res = load(p)
    assert_count_rule(res)
    rt = res.extra_tables[RECORDS_TABLE].set_index("record")
    fx = res.fixes
    assert len(fx) == 20 and set(fx["subject_id"]) == {IMEI, other}
    for r in fx.itertuples():
        h = rt.loc[r.record]
        want = (f'{{"codec":"8E","event_io":{h.event_io},"imei":"{h.imei}",'
                f'"priority":{h.priority},"sats":{h.satellites}}}')
        assert r.extra == want and r.flags == ("no_fix" if h.satellites == 0 else "")
    flags = ["zero_position" if i == 3 else "inconsistent_value" if i == 5 else "" for i in range(12)]
    assert rt["flags"].tolist() == flags * 2
    io = res.extra_tables[IO_TABLE].astype({"record": str})
    raw_of = {(x.record, int(x.io_id)): int(x.raw) for x in io.itertuples()}
    ev = res.events
    value = ev[ev["flags"].str.contains("derived") == False]  # noqa: E712
    assert len(value) and set(ev["kind"]) >= {"ignition", "ignition_on", "ignition_off"}
    for e in value.itertuples():
        iid = 239 if e.kind == "ignition" else 66
        raw = raw_of[(e.record, iid)]
        name = "ignition" if iid == 239 else "external_voltage"
        trig = "true" if int(rt.loc[e.record, "event_io"]) == iid else "false"
        assert e.text == f"IO {iid} {name} = {raw}"
        assert e.extra == f'{{"io_id":{iid},"raw":{raw},"triggered":{trig}}}'
    for e in ev[ev["kind"].isin(["ignition_on", "ignition_off"])].itertuples():
        raw = raw_of[(e.record, 239)]
        assert e.text == f"{e.kind}: IO 239 {1 - raw} -> {raw}"
        assert e.extra.startswith('{"from_record":"offset ') and e.extra.endswith(
            f',"io_id":239,"triggered":{"true" if int(rt.loc[e.record, "event_io"]) == 239 else "false"}}}')
