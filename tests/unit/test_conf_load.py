"""`load` / `validate_file` on real files: include resolution, errors naming files, content hash."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agents.errors import ConfigError
from agents.srs.conf import ConfigSyntaxError, content_sha256, load, validate_file

FIXTURES = Path(__file__).parents[1] / "fixtures" / "conf"


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_include_beside_the_including_file() -> None:
    config = load(str(FIXTURES / "include-main.conf"))
    assert [d.name for d in config.root] == ["listen", "daemon", "vhost"]
    vhost = config.root[2]
    assert vhost.file == str(FIXTURES / "include-vhost.inc")
    assert (vhost.line, vhost.col) == (1, 1)
    assert list(config.files) == [str(FIXTURES / "include-main.conf"), vhost.file]
    assert validate_file(str(FIXTURES / "include-main.conf")) == []


def test_include_inside_a_block_and_several_files(tmp_path: Path) -> None:
    main = write(
        tmp_path / "srs.conf",
        "listen 1935;\nvhost v {\n    include hls.conf dvr.conf;\n    enabled on;\n}\n",
    )
    write(tmp_path / "hls.conf", "hls { enabled on; }\n")
    write(tmp_path / "dvr.conf", "# dvr\ndvr { enabled off; }\n")
    vhost = load(main).root[1]
    assert [(d.name, Path(d.file).name, d.line) for d in vhost.children or []] == [
        ("hls", "hls.conf", 1),
        ("dvr", "dvr.conf", 2),
        ("enabled", "srs.conf", 4),
    ]


def test_include_falls_back_to_srs_working_directory(tmp_path: Path) -> None:
    main = write(tmp_path / "conf" / "srs.conf", "listen 1935;\ninclude conf/extra.conf;\n")
    write(tmp_path / "conf" / "extra.conf", "vhost v { }\n")
    assert [d.name for d in load(main, cwd=str(tmp_path)).root] == ["listen", "vhost"]
    with pytest.raises(ConfigSyntaxError) as info:
        load(main, cwd=str(tmp_path / "elsewhere"))
    problem = info.value.problem
    assert (problem.file, problem.line, problem.col) == (main, 2, 9)
    assert problem.message.startswith("include conf/extra.conf: no such file")


def test_include_falls_back_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    main = write(tmp_path / "conf" / "srs.conf", "listen 1935;\ninclude conf/extra.conf;\n")
    write(tmp_path / "conf" / "extra.conf", "vhost v { }\n")
    monkeypatch.chdir(tmp_path)
    assert [d.name for d in load(main).root] == ["listen", "vhost"]


def test_include_errors_are_positioned(tmp_path: Path) -> None:
    main = write(tmp_path / "srs.conf", "listen 1935;\ninclude;\n")
    assert [str(p) for p in validate_file(main)] == [f"{main}:2:1: include is empty directive"]
    write(tmp_path / "srs.conf", "listen 1935;\ninclude  self.conf;\n")
    write(tmp_path / "self.conf", "include srs.conf;\n")
    problem = validate_file(main)[0]
    assert (problem.file, problem.line, problem.col) == (str(tmp_path / "self.conf"), 1, 9)
    assert problem.message == "include srs.conf: includes itself"


def test_syntax_error_inside_an_included_file(tmp_path: Path) -> None:
    main = write(tmp_path / "srs.conf", "listen 1935;\nvhost v {\n    include hls.conf;\n}\n")
    write(tmp_path / "hls.conf", "hls {\n    enabled on;\n}\n}\n")
    assert [str(p) for p in validate_file(main)] == [
        f"{tmp_path / 'hls.conf'}:4:1: unexpected \"}}\""
    ]


def test_missing_or_unreadable_config_is_a_config_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.conf")
    with pytest.raises(ConfigError, match=r"nope\.conf: no such config file") as info:
        validate_file(missing)
    assert not isinstance(info.value, ConfigSyntaxError)
    with pytest.raises(ConfigError, match=r"cannot read config file"):
        load(str(tmp_path))  # a directory


def test_bytes_are_kept_even_when_not_utf8(tmp_path: Path) -> None:
    raw = b"listen 1935;\npid /run/\xff\xfe.pid;\n"
    path = tmp_path / "latin.conf"
    path.write_bytes(raw)
    config = load(str(path))
    assert config.files[str(path)].encode("utf-8", "surrogateescape") == raw


def test_content_sha256_covers_included_files_and_not_paths(tmp_path: Path) -> None:
    main = write(tmp_path / "a" / "srs.conf", "listen 1935;\ninclude vhost.conf;\n")
    vhost = write(tmp_path / "a" / "vhost.conf", "vhost v { hls { hls_fragment 2; } }\n")
    first = content_sha256(load(main))
    assert len(first) == 64 and first == content_sha256(load(main))
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    assert content_sha256(load(str(tmp_path / "b" / "srs.conf"))) == first
    write(Path(vhost), "vhost v { hls { hls_fragment 3; } }\n")
    assert content_sha256(load(main)) != first


def test_srs_resolves_includes_from_its_working_directory_only(tmp_path: Path) -> None:
    """The reload gate reads what SRS will read: `beside=False` looks in cwd alone."""
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    main = conf_dir / "srs.conf"
    main.write_text("listen 1935;\ninclude vhost.conf;\n")
    (conf_dir / "vhost.conf").write_text("vhost a {}\n")
    assert load(str(main), cwd=str(tmp_path)).get("vhost") is not None  # beside: found
    with pytest.raises(ConfigSyntaxError, match="SRS's working directory"):
        load(str(main), cwd=str(tmp_path), beside=False)
    main.write_text("listen 1935;\ninclude conf/vhost.conf;\n")  # as SRS resolves it
    assert load(str(main), cwd=str(tmp_path), beside=False).get("vhost") is not None
