"""`fetch-model SOURCE DEST`: download a model archive safely and install it atomically.

* Streamed to a temporary file beside DEST (never whole in memory), hashed on the way, with
  connect and read timeouts and a size cap.
* The archive's sha256 must match the manifest: `--sha256 HEX`, or a manifest fetched from
  `--manifest` or `SOURCE.sha256` (`sha256sum` format or JSON `{"sha256": ...}`).
* Extracted into a temporary directory; members that are absolute, climb out with `..`, or
  are links or devices are refused, and so is an archive that expands past a size limit (a
  decompression bomb) or holds a member over the per-file limit: sizes are checked before
  anything is written, and zip members are counted again while they are written. The four
  artifacts must be there and match the digests in config.json.
* Installed with renames: DEST is either the old model or the new one, never half of each.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from sotag.tagger.artifacts import ARTIFACT_FILES, CONFIG_FILE, verify_artifacts
from sotag.tagger.errors import ArtifactError, InputError

CHUNK = 1 << 20


@dataclass(frozen=True)
class FetchConfig:
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    max_bytes: int = 4 << 30  # the archive as downloaded
    max_extracted_bytes: int = 8 << 30  # everything it expands to: past this, a decompression bomb
    max_member_bytes: int = 4 << 30  # any one file in it
    s3_endpoint_url: str | None = None  # an S3-compatible store (the settings' s3_endpoint_url); None: AWS


def _chunks(source: str, config: FetchConfig) -> Iterator[bytes]:
    """The bytes of `source` (http(s)://, s3://, file:// or a path), a chunk at a time."""
    scheme = urlparse(source).scheme
    if scheme in {"http", "https"}:
        import requests

        try:
            with requests.get(
                source, stream=True, timeout=(config.connect_timeout_s, config.read_timeout_s)
            ) as response:
                if response.status_code != 200:
                    raise ArtifactError(f"{source}: HTTP {response.status_code}")
                yield from response.iter_content(CHUNK)
        except requests.RequestException as exc:
            raise ArtifactError(f"{source}: download failed ({type(exc).__name__}: {exc})") from exc
    elif scheme == "s3":
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        parsed = urlparse(source)
        client = boto3.client(
            "s3",
            endpoint_url=config.s3_endpoint_url,
            config=Config(
                connect_timeout=config.connect_timeout_s,
                read_timeout=config.read_timeout_s,
                retries={"max_attempts": 3},
            ),
        )
        try:
            body = client.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"]
            yield from body.iter_chunks(CHUNK)
        except (BotoCoreError, ClientError) as exc:
            raise ArtifactError(f"{source}: download failed ({exc})") from exc
    elif scheme in {"", "file"}:
        path = Path(urlparse(source).path if scheme == "file" else source)
        if not path.is_file():
            raise InputError("SOURCE", f"{path} is not a file")
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
    else:
        raise InputError("SOURCE", f"unsupported scheme {scheme!r} (use https://, s3://, file:// or a path)")


def download(source: str, target: Path, config: FetchConfig) -> str:
    """Stream `source` into `target`; return its sha256."""
    digest = hashlib.sha256()
    size = 0
    with target.open("wb") as out:
        for chunk in _chunks(source, config):
            size += len(chunk)
            if size > config.max_bytes:
                raise ArtifactError(f"{source}: larger than the limit of {config.max_bytes} bytes")
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def expected_sha256(source: str, sha256: str | None, manifest: str | None, config: FetchConfig) -> str:
    if sha256:
        value = sha256.strip().lower()
    else:
        where = manifest or f"{source}.sha256"
        text = b"".join(_chunks(where, config)).decode("utf-8", errors="replace").strip()
        if text.startswith("{"):
            try:
                value = str(json.loads(text)["sha256"]).lower()
            except (ValueError, KeyError) as exc:
                raise ArtifactError(f"{where}: a JSON manifest needs a 'sha256' field") from exc
        else:
            value = text.split()[0].lower() if text else ""
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise InputError("sha256", f"{value!r} is not a sha256 hex digest")
    return value


def _safe_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    windows_absolute = name.startswith("\\") or (len(name) > 1 and name[1] == ":")
    if path.is_absolute() or ".." in path.parts or windows_absolute:
        raise ArtifactError(f"archive member {name!r} escapes the destination; refusing the archive")
    return path


def _check_sizes(archive: Path, sizes: list[tuple[str, int]], config: FetchConfig) -> None:
    for name, size in sizes:
        if size > config.max_member_bytes:
            raise ArtifactError(
                f"archive member {name!r} is {size} bytes, over the {config.max_member_bytes}-byte limit per file; "
                "refusing the archive"
            )
    total = sum(size for _, size in sizes)
    if total > config.max_extracted_bytes:
        packed = max(archive.stat().st_size, 1)
        raise ArtifactError(
            f"{archive.name}: expands to {total} bytes ({total / packed:.0f}x its {packed} bytes), over the "
            f"{config.max_extracted_bytes}-byte limit: refusing a decompression bomb"
        )


def _extract_zip(zf: zipfile.ZipFile, target: Path, config: FetchConfig) -> None:
    """Member by member, counting what is really written: a zip's declared sizes may lie."""
    written = 0
    for info in zf.infolist():
        path = target / _safe_name(info.filename)
        if info.is_dir():
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        size = 0
        with zf.open(info) as src, open(path, "wb") as dst:
            while block := src.read(CHUNK):
                size += len(block)
                written += len(block)
                if size > config.max_member_bytes or written > config.max_extracted_bytes:
                    raise ArtifactError(
                        f"archive member {info.filename!r} expands past the size limit; refusing the archive"
                    )
                dst.write(block)


def extract(archive: Path, target: Path, config: FetchConfig | None = None) -> None:
    """Extract a .tar(.gz|.bz2|.xz) or .zip, refusing unsafe members and oversized content before writing."""
    config = config or FetchConfig()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                _safe_name(info.filename)
                mode = info.external_attr >> 16
                if mode and (mode & 0o170000) == 0o120000:
                    raise ArtifactError(f"archive member {info.filename!r} is a symbolic link; refusing the archive")
            _check_sizes(archive, [(i.filename, i.file_size) for i in zf.infolist()], config)
            try:
                _extract_zip(zf, target, config)
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise ArtifactError(f"{archive.name}: a corrupt zip member ({exc}); refusing the archive") from None
        return
    try:
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for member in members:
                _safe_name(member.name)
                if member.issym() or member.islnk():
                    raise ArtifactError(f"archive member {member.name!r} is a link; refusing the archive")
                if not (member.isfile() or member.isdir()):
                    raise ArtifactError(f"archive member {member.name!r} is not a regular file; refusing the archive")
            _check_sizes(archive, [(m.name, m.size) for m in members if m.isfile()], config)
            tf.extractall(target, members=members, filter="data")
    except tarfile.TarError as exc:
        raise ArtifactError(f"{archive.name}: not a tar or zip archive ({exc})") from exc


def _model_root(extracted: Path) -> Path:
    """The four files at the top, or inside the archive's single top-level folder."""
    candidates = [extracted, *[p for p in extracted.iterdir() if p.is_dir()]]
    for candidate in candidates:
        if (candidate / CONFIG_FILE).is_file():
            missing = [n for n in ARTIFACT_FILES if not (candidate / n).is_file()]
            if missing:
                raise ArtifactError(f"archive: {', '.join(missing)} missing beside {CONFIG_FILE}")
            return candidate
    raise ArtifactError(f"archive: no {CONFIG_FILE} (expected {', '.join((*ARTIFACT_FILES, CONFIG_FILE))})")


ARCHIVE_DIGEST_FILE = ".archive.sha256"


def installed_digest(dest: Path) -> str | None:
    """The sha256 of the archive the model in `dest` came from, if it was installed by fetch_model."""
    try:
        return (Path(dest) / ARCHIVE_DIGEST_FILE).read_text().strip() or None
    except OSError:
        return None


def ensure_model(
    source: str, dest: Path, sha256: str | None = None, manifest: str | None = None, config: FetchConfig | None = None
) -> tuple[Path, bool]:
    """An idempotent start: install `source` into `dest` unless the installed model already has its digest.

    Returns (the model directory, whether it was downloaded). The installed model's files are verified
    against their own digests either way; a failed fetch leaves `dest` as it was.
    """
    config = config or FetchConfig()
    expected = expected_sha256(source, sha256, manifest, config)
    dest = Path(dest).resolve()
    if installed_digest(dest) == expected:
        try:
            verify_artifacts(dest)
            return dest, False
        except ArtifactError:
            pass  # damaged since it was installed: fetch it again
    return fetch_model(source, dest, expected, None, config), True


def fetch_model(
    source: str, dest: Path, sha256: str | None = None, manifest: str | None = None, config: FetchConfig | None = None
) -> Path:
    config = config or FetchConfig()
    dest = Path(dest).resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)
    expected = expected_sha256(source, sha256, manifest, config)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.fetch-", dir=dest.parent))
    try:
        archive = work / "archive"
        actual = download(source, archive, config)
        if actual != expected:
            raise ArtifactError(
                f"{source}: sha256 mismatch (manifest {expected[:12]}…, downloaded {actual[:12]}…); nothing installed"
            )
        extracted = work / "extracted"
        extracted.mkdir()
        extract(archive, extracted, config)
        root = _model_root(extracted)
        verify_artifacts(root)
        staged = work / "model"
        root.rename(staged)
        # Remembered with the model, so a restart with the same archive downloads nothing (ensure_model).
        (staged / ARCHIVE_DIGEST_FILE).write_text(actual + "\n")
        old = None
        if dest.exists():
            old = dest.parent / f".{dest.name}.old-{os.getpid()}"
            dest.rename(old)
        staged.rename(dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return dest
    finally:
        shutil.rmtree(work, ignore_errors=True)
