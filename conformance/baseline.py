"""A snapshot on disk: JSON metadata and .npz arrays, nothing that unpickles.

    baseline/
      manifest.json          format version, environment, settings, the corpus of each spec
                             (labels, parameters, content hash), the targets, and a SHA-256
                             of every file
      corpus/<spec>.npz      the inputs of each case (and its array parameters)
      records/<n>.npz        one target x spec: outputs and gradients (in the tested dtype,
                             bfloat16 as float32), float64 references, and the records' rows
                             (status, output dtype and shape) as JSON bytes

Inside each .npz the arrays lie end to end, one flat array per dtype, with an index (JSON)
of each array's dtype, offset and shape.

A case outside the spec's domain in a dtype has no record (compare recomputes the domain).
Every .npz is read with allow_pickle=False. A file whose bytes do not match its checksum, a
missing file or key, or a manifest from a newer format is a BaselineError naming the file and
what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from conformance.case import Case
from conformance.loading import LoadError, load_attribute

FORMAT = 1
MANIFEST = "manifest.json"
# The modules a stored callable parameter may come from (conformance.specs.embedding's
# distances): read back by import, so only the suite's own.
CALLABLES_FROM = "conformance."
RECORD_ROWS = "records"  # a records file's metadata rows: JSON, as UTF-8 bytes


class BaselineError(Exception):
    """A baseline that cannot be read as it was written."""


# ----------------------------------------------------------------------------- cases


def _encode_value(value: Any, key: str, arrays: dict[str, np.ndarray]) -> Any:
    """A parameter as JSON; an array goes to `arrays` under `key`."""
    if isinstance(value, np.ndarray):
        arrays[key] = value
        return {"array": key}
    if isinstance(value, tuple | list):
        return {"items": [_encode_value(v, f"{key}.{i}", arrays) for i, v in enumerate(value)],
                "tuple": isinstance(value, tuple)}
    if isinstance(value, np.generic):
        return value.item()
    if callable(value):
        # A callable parameter (triplet_margin_with_distance_loss's distance_function) is one
        # of the suite's named ones, stored by its import path and read back by importing it.
        path = getattr(value, "import_path", None)
        if not isinstance(path, str) or not path.startswith(CALLABLES_FROM):
            raise BaselineError(f"parameter {key}: {value!r} is a callable without an import"
                                f" path in {CALLABLES_FROM}*: a snapshot cannot store it")
        return {"callable": path}
    return value


def _decode_value(value: Any, arrays: Any, where: str) -> Any:
    if isinstance(value, dict) and "array" in value:
        return _array(arrays, value["array"], where)
    if isinstance(value, dict) and "callable" in value:
        path = value["callable"]
        # Only the suite's own modules are imported: a manifest names code, it never brings it.
        if not isinstance(path, str) or not path.startswith(CALLABLES_FROM):
            raise BaselineError(f"{where}: a callable parameter {path!r} outside"
                                f" {CALLABLES_FROM}*")
        try:
            return load_attribute(path)
        except LoadError as exc:
            raise BaselineError(f"{where}: cannot import the callable parameter {path!r}:"
                                f" {exc}") from exc
    if isinstance(value, dict) and "items" in value:
        items = [_decode_value(v, arrays, where) for v in value["items"]]
        return tuple(items) if value.get("tuple") else items
    return value


def encode_cases(cases: list[Case]) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """The cases as JSON metadata and named arrays."""
    meta, arrays = [], {}
    for i, case in enumerate(cases):
        for name, value in case.inputs.items():
            arrays[f"{i}.input.{name}"] = value
        meta.append({
            "label": case.label,
            "inputs": list(case.inputs),
            "params": {k: _encode_value(v, f"{i}.param.{k}", arrays)
                       for k, v in case.params.items()},
        })
    return meta, arrays


def decode_cases(meta: list[dict[str, Any]], arrays: Any, where: str) -> list[Case]:
    try:
        return [Case(inputs={name: _array(arrays, f"{i}.input.{name}", where)
                             for name in entry["inputs"]},
                     params={k: _decode_value(v, arrays, where)
                             for k, v in entry["params"].items()},
                     label=entry["label"])
                for i, entry in enumerate(meta)]
    except (KeyError, TypeError) as exc:
        raise BaselineError(f"{where}: a case's metadata is malformed ({exc!r})") from exc


def corpus_hash(cases: list[Case]) -> str:
    """A content hash of the cases: their labels, parameters, and each array's dtype, shape
    and bytes. Two corpora with the same hash hold the same inputs."""
    meta, arrays = encode_cases(cases)
    digest = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


# ----------------------------------------------------------------------------- files


def _array(arrays: Any, key: str, where: str) -> np.ndarray:
    try:
        return np.asarray(arrays[key])
    except KeyError:
        raise BaselineError(f"{where}: the array {key!r} is missing") from None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


INDEX = "index"  # a packed file's table: key -> [dtype, offset, shape], as one JSON string


def _pack(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every array of a file laid end to end in one flat array per dtype, with an index:
    thousands of tiny arrays would each cost a header and a zip entry."""
    flat: dict[str, list[np.ndarray]] = {}
    sizes: dict[str, int] = {}
    index = {}
    for key, value in arrays.items():
        value = np.asarray(value)
        kind = value.dtype.str
        index[key] = [kind, sizes.get(kind, 0), list(value.shape)]
        flat.setdefault(kind, []).append(value.reshape(-1))
        sizes[kind] = sizes.get(kind, 0) + value.size
    packed = {f"pack{kind}": np.concatenate(parts) for kind, parts in flat.items()}
    return {**packed, INDEX: np.array(json.dumps(index, separators=(",", ":")))}


def _unpack(stored: dict[str, np.ndarray], where: str) -> dict[str, np.ndarray]:
    if INDEX not in stored:
        raise BaselineError(f"{where}: no {INDEX!r} entry")
    try:
        index = json.loads(str(stored[INDEX]))
        out = {}
        for key, (kind, offset, shape) in index.items():
            flat = stored[f"pack{kind}"]
            size = int(np.prod(shape, dtype=int))
            if offset + size > flat.size:
                raise BaselineError(f"{where}: {key!r} runs past its packed array")
            out[key] = flat[offset:offset + size].reshape(shape)
        return out
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise BaselineError(f"{where}: its index does not match its arrays ({exc!r})"
                            ) from None


def _save(folder: Path, relative: str, arrays: dict[str, np.ndarray],
          checksums: dict[str, str]) -> None:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **_pack(arrays))
    checksums[relative] = _sha256(path)


@dataclass
class Baseline:
    """What a snapshot holds, in memory."""

    environment: dict[str, str]
    settings: dict[str, Any]
    corpus: dict[str, list[Case]]  # spec -> cases
    corpus_hashes: dict[str, str]
    targets: list[dict[str, Any]]  # {"target", "spec", "records": [metadata...]}
    arrays: list[dict[str, np.ndarray]] = field(default_factory=list)  # per target

    def write(self, folder: Path) -> int:
        """Write into `folder` (created); the bytes written."""
        folder.mkdir(parents=True, exist_ok=True)
        checksums: dict[str, str] = {}
        corpus_meta = {}
        for spec, cases in self.corpus.items():
            meta, arrays = encode_cases(cases)
            relative = f"corpus/{spec}.npz"
            _save(folder, relative, arrays, checksums)
            corpus_meta[spec] = {"file": relative, "hash": self.corpus_hashes[spec],
                                 "cases": meta}
        targets = []
        for i, (entry, arrays) in enumerate(zip(self.targets, self.arrays, strict=True)):
            relative = f"records/{i}.npz"
            # The records' metadata rows travel compressed beside their arrays.
            rows = np.frombuffer(json.dumps(entry["records"], separators=(",", ":")).encode(),
                                 dtype=np.uint8)
            _save(folder, relative, {**arrays, RECORD_ROWS: rows}, checksums)
            targets.append({**{k: v for k, v in entry.items() if k != "records"},
                            "file": relative})
        manifest = {"format": FORMAT, "environment": self.environment,
                    "settings": self.settings, "corpus": corpus_meta, "targets": targets,
                    "checksums": checksums}
        (folder / MANIFEST).write_text(json.dumps(manifest, separators=(",", ":")))
        return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def read(folder: Path) -> Baseline:
    """A baseline written by `Baseline.write`, checked file by file."""
    path = folder / MANIFEST
    if not folder.is_dir():
        raise BaselineError(f"{folder}: no such baseline folder")
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise BaselineError(f"{path}: missing (is {folder} a snapshot?)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path}: not valid JSON, truncated or edited ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("format"), int):
        raise BaselineError(f"{path}: no format version; not a snapshot manifest")
    if manifest["format"] > FORMAT:
        raise BaselineError(f"{path}: format {manifest['format']} is newer than this suite"
                            f" reads (up to {FORMAT}); upgrade the suite or re-snapshot")
    try:
        checksums: dict[str, str] = manifest["checksums"]

        def load(relative: str) -> Any:
            file = folder / relative
            if relative not in checksums:
                raise BaselineError(f"{file}: not listed in the manifest's checksums")
            if not file.is_file():
                raise BaselineError(f"{file}: missing")
            if _sha256(file) != checksums[relative]:
                raise BaselineError(f"{file}: its bytes do not match the manifest's checksum"
                                    " (truncated, corrupted or edited)")
            try:
                with np.load(file, allow_pickle=False) as data:
                    stored = {k: data[k] for k in data.files}
            except (zipfile.BadZipFile, ValueError, OSError) as exc:
                raise BaselineError(f"{file}: not a readable .npz ({exc})") from None
            return _unpack(stored, str(file))

        corpus, hashes = {}, {}
        for spec, entry in manifest["corpus"].items():
            where = str(folder / entry["file"])
            cases = decode_cases(entry["cases"], load(entry["file"]), where)
            if corpus_hash(cases) != entry["hash"]:
                raise BaselineError(f"{where}: the cases do not hash to the manifest's"
                                    f" {entry['hash']} (edited)")
            corpus[spec], hashes[spec] = cases, entry["hash"]
        targets, arrays = [], []
        for entry in manifest["targets"]:
            found = load(entry["file"])
            rows = found.pop(RECORD_ROWS, None)
            if rows is None:
                raise BaselineError(f"{folder / entry['file']}: no {RECORD_ROWS!r} entry")
            try:
                records = json.loads(rows.astype(np.uint8).tobytes().decode())
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise BaselineError(f"{folder / entry['file']}: its record rows are not"
                                    f" JSON ({exc})") from None
            targets.append({"target": entry["target"], "spec": entry["spec"],
                            "records": records})
            arrays.append(found)
        return Baseline(manifest["environment"], manifest["settings"], corpus, hashes,
                        targets, arrays)
    except (KeyError, TypeError, AttributeError) as exc:
        raise BaselineError(f"{path}: a required entry is missing or malformed ({exc!r})"
                            ) from None
