"""fetch-model: streamed download over HTTP, S3 and file paths; sha256; unsafe archives refused."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import tarfile
import threading
import zipfile
from functools import partial
from pathlib import Path

import pytest

from sotag.cli import main
from sotag.serving.fetch import fetch_model
from sotag.tagger.artifacts import ARTIFACT_FILES, CONFIG_FILE, write_artifacts
from sotag.tagger.errors import ArtifactError, InputError
from sotag.tagger.model import Tagger
from tests.support.settings import gateway_config


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A real four-file model from a tiny fit."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer

    from sotag.tagger.artifacts import ModelConfig
    from sotag.tagger.fused import FusedLinearModel
    from sotag.tagger.text import PREPROCESSING_VERSION

    texts = ["python pandas", "java spring", "python django", "java maven"] * 5
    tags = [["python"], ["java"], ["python"], ["java"]] * 5
    mlb = MultiLabelBinarizer().fit(tags)
    vec = TfidfVectorizer().fit(texts)
    ovr = OneVsRestClassifier(LogisticRegression()).fit(vec.transform(texts), mlb.transform(tags))
    config = ModelConfig(3, 0.1, "tfidf", list(mlb.classes_), PREPROCESSING_VERSION)
    return write_artifacts(
        tmp_path_factory.mktemp("model") / "m", vec, FusedLinearModel.from_one_vs_rest(ovr), mlb, config
    )


def tar_of(directory: Path, prefix: str = "model") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name in (*ARTIFACT_FILES, CONFIG_FILE):
            tf.add(directory / name, arcname=f"{prefix}/{name}" if prefix else name)
    return buf.getvalue()


def write(path: Path, data: bytes) -> tuple[Path, str]:
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_fetch_from_a_file_with_sidecar_manifest(model_dir, tmp_path):
    archive, digest = write(tmp_path / "model.tar.gz", tar_of(model_dir))
    (tmp_path / "model.tar.gz.sha256").write_text(f"{digest}  model.tar.gz\n")
    dest = fetch_model(str(archive), tmp_path / "installed")
    assert Tagger.from_directory(dest).suggest(["python pandas"], [""])[0].tags[0] == "python"


def test_fetch_over_http_replaces_an_installed_model_atomically(model_dir, tmp_path):
    served = tmp_path / "www"
    served.mkdir()
    _, digest = write(served / "model.tar.gz", tar_of(model_dir, prefix=""))
    (served / "manifest.json").write_text(json.dumps({"sha256": digest}))
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    dest = tmp_path / "installed"
    dest.mkdir()
    (dest / "stale.txt").write_text("old model")
    try:
        fetch_model(f"{base}/model.tar.gz", dest, manifest=f"{base}/manifest.json")
        with pytest.raises(ArtifactError, match="HTTP 404"):
            fetch_model(f"{base}/missing.tar.gz", tmp_path / "other", sha256=digest)
    finally:
        server.shutdown()
    assert not (dest / "stale.txt").exists() and (dest / CONFIG_FILE).is_file()
    assert not (tmp_path / "other").exists()


@pytest.mark.integration
def test_fetch_from_s3(model_dir, tmp_path, monkeypatch):
    from sotag.mlruns_config.servers import MotoS3

    s3 = MotoS3().start()
    try:
        data = tar_of(model_dir)
        s3.create_bucket("models")
        s3.client().put_object(Bucket="models", Key="tagger/model.tar.gz", Body=data)
        for key, value in {**MotoS3.credentials(), "MLFLOW_S3_ENDPOINT_URL": s3.endpoint}.items():
            monkeypatch.setenv(key, value)
        digest = hashlib.sha256(data).hexdigest()
        code = main(["fetch-model", "s3://models/tagger/model.tar.gz", str(tmp_path / "m"), "--sha256", digest])
        assert code == 0 and (tmp_path / "m" / "estimator.joblib").is_file()
    finally:
        s3.stop()


def test_sha256_mismatch_installs_nothing(model_dir, tmp_path):
    archive, _ = write(tmp_path / "model.tar.gz", tar_of(model_dir))
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        fetch_model(str(archive), tmp_path / "installed", sha256="0" * 64)
    assert not (tmp_path / "installed").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model.tar.gz"]  # no temporary leftovers


def _tar_with(member: tarfile.TarInfo, data: bytes = b"") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.addfile(member, io.BytesIO(data) if data else None)
    return buf.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size, link
    return info


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (_tar_with(_member("../evil.txt", size=4), b"evil"), "escapes"),
        (_tar_with(_member("/etc/evil", size=4), b"evil"), "escapes"),
        (_tar_with(_member("config.json", tarfile.SYMTYPE, link="/etc/passwd")), "link"),
        (_tar_with(_member("config.json", tarfile.LNKTYPE, link="x")), "link"),
        (_tar_with(_member("dev", tarfile.CHRTYPE)), "not a regular file"),
        (b"this is not an archive", "not a tar or zip"),
    ],
    ids=["dotdot", "absolute", "symlink", "hardlink", "device", "garbage"],
)
def test_unsafe_or_broken_archives_are_refused(archive, message, tmp_path):
    path, digest = write(tmp_path / "a.tar.gz", archive)
    with pytest.raises(ArtifactError, match=message):
        fetch_model(str(path), tmp_path / "installed", sha256=digest)
    assert not (tmp_path / "installed").exists()


def test_zip_traversal_and_missing_files_are_refused(model_dir, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../../escape.txt", "x")
    path, digest = write(tmp_path / "a.zip", buf.getvalue())
    with pytest.raises(ArtifactError, match="escapes"):
        fetch_model(str(path), tmp_path / "installed", sha256=digest)

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.write(model_dir / CONFIG_FILE, CONFIG_FILE)
        zf.write(model_dir / "mlb.joblib", "mlb.joblib")
    path, digest = write(tmp_path / "b.zip", buf.getvalue())
    with pytest.raises(ArtifactError, match=r"vectorizer\.joblib, estimator\.joblib missing"):
        fetch_model(str(path), tmp_path / "installed", sha256=digest)


def _zeros_tar(members: dict[str, int]) -> bytes:
    """A tar.gz of files of zeros: megabytes that compress to a few kilobytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=9) as tf:
        for name, size in members.items():
            tf.addfile(_member(name, size=size), io.BytesIO(bytes(size)))
    return buf.getvalue()


def test_a_decompression_bomb_and_an_oversized_member_are_refused(tmp_path):
    from sotag.serving.fetch import FetchConfig

    limits = FetchConfig(max_extracted_bytes=20 << 20, max_member_bytes=8 << 20)
    bomb = _zeros_tar({f"part{i}.bin": 6 << 20 for i in range(5)})  # 30 MB in about 30 KB, no file over 8 MB
    path, digest = write(tmp_path / "bomb.tar.gz", bomb)
    assert path.stat().st_size < 200_000
    with pytest.raises(ArtifactError, match=r"expands to 31457280 bytes .* refusing a decompression bomb"):
        fetch_model(str(path), tmp_path / "installed", sha256=digest, config=limits)

    big = _zeros_tar({"config.json": 10, "estimator.joblib": 12 << 20})
    path, digest = write(tmp_path / "big.tar.gz", big)
    with pytest.raises(ArtifactError, match=r"'estimator\.joblib' is 12582912 bytes, over the 8388608-byte limit"):
        fetch_model(str(path), tmp_path / "installed", sha256=digest, config=limits)

    # A zip whose headers understate a member: counted while written, refused, nothing installed.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("estimator.joblib", bytes(12 << 20))
    data = bytearray(buf.getvalue())
    for header, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # uncompressed size: local, central
        at = data.find(header)
        data[at + offset : at + offset + 4] = (1000).to_bytes(4, "little")
    path, digest = write(tmp_path / "liar.zip", bytes(data))
    with pytest.raises(ArtifactError, match=r"a corrupt zip member \(Bad CRC-32"):
        fetch_model(str(path), tmp_path / "installed", sha256=digest, config=limits)
    assert not (tmp_path / "installed").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.tar.gz", "bomb.tar.gz", "liar.zip"]


def test_tampered_artifact_inside_a_correct_archive_is_refused(model_dir, tmp_path):
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    for name in (*ARTIFACT_FILES, CONFIG_FILE):
        (tampered / name).write_bytes((model_dir / name).read_bytes())
    (tampered / "mlb.joblib").write_bytes((model_dir / "mlb.joblib").read_bytes() + b"!")
    path, digest = write(tmp_path / "t.tar.gz", tar_of(tampered))
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        fetch_model(str(path), tmp_path / "installed", sha256=digest)


def test_cli_errors_exit_2_with_the_field(tmp_path, capsys):
    assert main(["fetch-model", "ftp://host/x", str(tmp_path / "d"), "--sha256", "0" * 64]) == 2
    assert "SOURCE" in capsys.readouterr().err
    archive, _ = write(tmp_path / "m.tar.gz", b"x")
    assert main(["fetch-model", str(archive), str(tmp_path / "d"), "--sha256", "nothex"]) == 2
    assert "sha256" in capsys.readouterr().err
    with pytest.raises(InputError):
        fetch_model(str(tmp_path / "absent.tar.gz"), tmp_path / "d", sha256="0" * 64)


def test_a_paas_start_fetches_once_and_a_restart_downloads_nothing(model_dir, tmp_path, monkeypatch, capsys):
    from sotag.serving.cli import model_to_serve

    served = tmp_path / "www"
    served.mkdir()
    _, digest = write(served / "model.tar.gz", tar_of(model_dir))
    requested: list[str] = []

    class Counting(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            requested.append(self.path)
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Counting, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "SOTAG_MODEL_URL": f"http://127.0.0.1:{server.server_address[1]}/model.tar.gz",
        "SOTAG_MODEL_SHA256": digest,
        "SOTAG_MODEL_DIR": str(tmp_path / "models" / "current"),
    }
    try:
        first = model_to_serve(gateway_config(env))
        assert requested == ["/model.tar.gz"] and "downloaded and verified" in capsys.readouterr().out
        second = model_to_serve(gateway_config(env))
        assert requested == ["/model.tar.gz"], "the second start downloaded again"
        assert "nothing downloaded" in capsys.readouterr().out
        assert first.model_uri == second.model_uri == str((tmp_path / "models" / "current").resolve())
        assert Tagger.from_directory(second.model_uri).suggest(["python pandas"], [""])[0].tags[0] == "python"

        # A damaged install is fetched again; a wrong digest exits 2 and leaves the installed model alone.
        (Path(second.model_uri) / "mlb.joblib").write_bytes(b"tampered")
        model_to_serve(gateway_config(env))
        assert requested == ["/model.tar.gz"] * 2
        for key, value in {**env, "SOTAG_MODEL_SHA256": "0" * 64}.items():
            monkeypatch.setenv(key, value)
        assert main(["gateway"]) == 2
        assert "sha256 mismatch" in capsys.readouterr().err
        assert Tagger.from_directory(second.model_uri).suggest(["python pandas"], [""])[0].tags[0] == "python"
    finally:
        server.shutdown()
