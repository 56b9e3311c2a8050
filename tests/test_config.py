"""Config loading: typed values, and one exact, actionable message per mistake."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from yololake.build.config import load_config, parse_config
from yololake.build.main import main
from yololake.errors import ConfigError
from yololake.importers.formats import IMPORT_FORMATS

MINIMAL = {"classes": {"names": ["car", "truck"]}, "split": {"column": "video_id"}}


def _with(**sections):
    return {**MINIMAL, **sections}


def _error(data) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return str(info.value)


def test_repo_configs_load():
    from yololake.video.config import load_extract_config

    root = Path(__file__).resolve().parents[1] / "conf"
    for path in sorted(root.glob("*.yaml")):
        if path.name.startswith("extract_frames"):
            assert load_extract_config(path) is not None
        else:  # a labeling tool's export may define the class names itself
            config = load_config(path)
            assert config.classes.names or config.annotations.format in IMPORT_FORMATS, path


def test_minimal_config_gets_defaults():
    config = parse_config(MINIMAL)
    assert config.output.frames_per_shard == 10_000
    assert config.images.mode == "link"
    assert config.annotations.box_format == "xyxy_pixel"
    assert config.classes.source_to_id() == {"car": 0, "truck": 1}


def test_class_map_keys_are_text_and_order_is_the_yolo_id():
    config = parse_config(_with(classes={"names": ["car", "truck"], "map": {1: "car", 2: "truck", 7: "car"}}))
    assert config.classes.source_to_id() == {"1": 0, "2": 1, "7": 0}


@pytest.mark.parametrize("data, message", [
    (_with(colour="red"),
     "colour: unknown key; allowed here: spark, spark_ui_bind, classes, annotations, frames, images, image_size, "
     "split, background, output, quarantine, storage, report"),
    (_with(output={"frames_per_shard": 0}), "output.frames_per_shard: must be at least 1, got 0"),
    (_with(output={"frames_per_shard": "many"}), "output.frames_per_shard: must be a whole number, got 'many'"),
    (_with(output={"frame_per_shard": 5}),
     "output.frame_per_shard: unknown key; allowed here: frames_per_shard, layout, archive_images, "
     "stale_after_seconds"),
    (_with(output={"layout": "zip"}), "output.layout: 'zip' is not one of files, shard_archive"),
    (_with(output={"archive_images": True}), "output.archive_images: needs layout: shard_archive"),
    (_with(storage={"max_attempts": 0}), "storage.max_attempts: must be at least 1, got 0"),
    (_with(annotations={"box_format": "xyxy"}),
     "annotations.box_format: 'xyxy' is not one of xyxy_pixel, xywh_pixel, cxcywh_normalized"),
    (_with(annotations={"box_columns": ["a", "b", "c"]}),
     "annotations.box_columns: needs 4 distinct column names, got ['a', 'b', 'c']"),
    (_with(images={"mode": "hardlink"}), "images.mode: 'hardlink' is not one of link, copy, none"),
    (_with(split={"column": "v", "ratios": {"train": 0.8, "val": 0.1}}),
     "split.ratios: must sum to 1, got 0.9 from {'train': 0.8, 'val': 0.1}"),
    (_with(split={"column": "v", "ratios": {"train": 0.9, "dev": 0.1}}),
     "split.ratios: 'dev' is not one of train, val, test"),
    (_with(split={"mode": "column"}), "split.column: is required with mode column"),
    (_with(split={"mode": "source_file"}),
     "split.files: is required with mode source_file: map each annotation file name to a split"),
    (_with(classes={"names": ["car"], "map": {"1": "bus"}}),
     "classes.map.1: maps to 'bus', which is not in classes.names ['car']"),
    (_with(classes={"names": ["car", "car"]}), "classes.names: names must be unique, repeated: car"),
    (_with(classes={"names": ["car", "truck"], "map": {"1": "car", "1.0": "truck"}}),
     "classes.map.1.0: is the same class value as 1 (class values 1.0 and 1 match), but maps to 'truck', not 'car'"),
    (_with(annotations={"box_margin": -1}),
     "annotations.box_margin: must be between 0 and 1000 image sizes, got -1.0"),
    (_with(annotations={"on_unreadable_file": "skip"}),
     "annotations.on_unreadable_file: 'skip' is not one of fail, quarantine"),
    (_with(spark_ui_bind="0.0.0.0"), "spark_ui_bind: '0.0.0.0' is not one of loopback, all_interfaces"),
    ({"split": {"column": "v"}}, "classes.names: must list at least one class name (only a labeling tool's "
                                 "export, annotations.format coco, voc, cvat, labelstudio, groundtruth, defines its own)"),
    (_with(annotations={"format": "coco", "box_format": "xywh_pixel"}),
     "annotations.box_format: is set by the coco export itself; remove it"),
    ({"split": {"column": "v"}, "annotations": {"format": "voc"}, "classes": {"map": {"a": "b"}}},
     "classes.map.a: maps to 'b', which is not in classes.names []"),
    (_with(quarantine={"max_fraction": 1.5}), "quarantine.max_fraction: must be between 0 and 1, got 1.5"),
    (_with(background={"policy": "some"}), "background.policy: 'some' is not one of keep, drop, sample"),
    (_with(images={"check_exists": "yes"}), "images.check_exists: must be true or false, got 'yes'"),
    (_with(images={"size_mismatch": "ignore"}),
     "images.size_mismatch: 'ignore' is not one of quarantine, trust_image"),
    ([1, 2], "config: must be a mapping of keys, got [1, 2]"),
])
def test_config_errors_are_exact(data, message):
    assert _error(data) == message


def test_load_config_names_the_file_and_applies_overrides(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(textwrap.dedent("""\
        classes: {names: [car]}
        split: {column: video_id}
        output: {frames_per_shard: 10}
    """))
    config = load_config(path, ["output.frames_per_shard=500", "images.mode=copy"])
    assert config.output.frames_per_shard == 500 and config.images.mode == "copy"
    with pytest.raises(ConfigError) as info:
        load_config(path, ["output.frames_per_shard=-1"])
    assert str(info.value) == f"config {path}: output.frames_per_shard: must be at least 1, got -1"
    with pytest.raises(ConfigError) as info:
        load_config(path, ["frames_per_shard"])
    assert str(info.value) == ("--set 'frames_per_shard': expected KEY=VALUE, "
                               "e.g. output.frames_per_shard=500")


def test_yaml_tags_and_a_config_that_is_not_a_mapping_name_their_source(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("classes: {names: [car]}\nsplit: {column: video_id}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, ['classes.names=!!python/object/apply:os.system ["echo hi"]'])
    assert str(info.value) == (
        "--set 'classes.names=!!python/object/apply:os.system [\"echo hi\"]': the value is not valid YAML (could not "
        "determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.system' at line 1, column 1); "
        "write a plain value, quoted if it is text")
    path.write_text("classes: !!python/name:os.system\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (f"config {path} is not valid YAML: could not determine a constructor for the tag "
                               "'tag:yaml.org,2002:python/name:os.system' at line 1, column 10")
    path.write_text("- classes\n- split\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, ["output.frames_per_shard=5"])
    assert str(info.value) == f"config {path}: must be a mapping of keys, got ['classes', 'split']"


def test_a_yaml_tag_in_set_exits_2_with_one_line(tmp_path, capsys):
    path = tmp_path / "job.yaml"
    path.write_text("classes: {names: [car]}\nsplit: {column: v}\n")
    code = main(["--config", str(path), "--annotations", str(tmp_path), "--out", str(tmp_path / "out"),
                 "--set", "split.seed=!!python/name:os.system"])
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "build_dataset: error: --set 'split.seed=!!python/name:os.system': the value is not valid YAML (could not "
        "determine a constructor for the tag 'tag:yaml.org,2002:python/name:os.system' at line 1, column 1); "
        "write a plain value, quoted if it is text"]


def test_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("classes: [unclosed\n")
    with pytest.raises(ConfigError, match=rf"^config {bad} is not valid YAML: "):
        load_config(bad)
    with pytest.raises(ConfigError, match=r"^cannot read config .*nope.yaml: No such file or directory$"):
        load_config(tmp_path / "nope.yaml")


def test_job_exits_with_one_line_before_spark_starts(tmp_path, capsys):
    path = tmp_path / "job.yaml"
    path.write_text("classes: {names: [car]}\nsplit: {column: v, seed: x}\n")
    code = main(["--config", str(path), "--annotations", str(tmp_path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1] == f"build_dataset: error: config {path}: split.seed: must be a whole number, got 'x'"
    assert not (tmp_path / "out").exists()


def test_s3_inputs_are_read_by_spark_through_the_configured_scheme():
    from yololake.tables import spark_paths

    assert spark_paths(["s3://lake/a", "s3a://lake/b", "/local/c", "gs://x/d"]) == [
        "s3a://lake/a", "s3a://lake/b", "/local/c", "gs://x/d"]
    assert spark_paths(["s3a://lake/a"], "s3") == ["s3://lake/a"]


def test_sections_built_in_code_are_checked_too():
    from yololake.build.config import ImagesConfig, OutputConfig

    with pytest.raises(ConfigError, match=r"^images.mode: 'hardlink' is not one of link, copy, none$"):
        ImagesConfig(mode="hardlink")
    with pytest.raises(ConfigError, match=r"^output.frames_per_shard: must be at least 1, got 0$"):
        OutputConfig(frames_per_shard=0)


def _job_without_java(tmp_path, *extra):
    """The build-dataset command in a fresh process whose JAVA_HOME holds no java: if Spark started, the
    run would fail on the missing JVM instead of with the config error, so passing proves it fails first."""
    import os
    import subprocess
    import sys

    conf = Path(__file__).resolve().parents[1] / "conf"
    no_java = tmp_path / "no-java"
    (no_java / "bin").mkdir(parents=True)
    env = {**os.environ, "JAVA_HOME": str(no_java), "PATH": os.path.dirname(sys.executable)}
    (tmp_path / "ann").mkdir()
    args = [sys.executable, "-m", "yololake", "build-dataset", "--annotations", str(tmp_path / "ann"),
            "--master", "local[1]", *extra]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, cwd=conf)


def test_link_images_with_an_object_store_out_fail_before_spark(tmp_path):
    done = _job_without_java(tmp_path, "--config", "demo.yaml", "--frames", str(tmp_path / "ann"),
                             "--out", "s3://bucket/datasets/v1")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "build_dataset: error: images.mode: link writes symlinks, which an object store cannot hold, and --out "
        "s3://bucket/datasets/v1 is not a local path; set images.mode: copy (or none), or write to a local --out"]


def test_no_manifest_no_image_size_and_no_image_reads_fail_before_spark(tmp_path):
    done = _job_without_java(tmp_path, "--config", "demo.yaml", "--out", str(tmp_path / "out"),
                             "--set", "images.check_exists=false")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "build_dataset: error: image_size: no --frames manifest gives the image sizes and images.check_exists is "
        "false, so no image is read: set image_size.width and image_size.height (e.g. 480 and 300 for Udacity), "
        "pass --frames, or set images.check_exists: true"]
    assert not (tmp_path / "out").exists()


def test_sizes_from_the_images_need_no_image_size():
    from yololake.build.config import check_run

    base = {"classes": {"names": ["car"]}, "split": {"column": "video"}}
    check_run(parse_config(base), "/tmp/out", [])  # the images are read: no error
    with pytest.raises(ConfigError, match="images.decode: needs images.check_exists: true"):
        check_run(parse_config({**base, "images": {"check_exists": False, "decode": True}}), "/tmp/out", ["f.parquet"])
