"""The one YAML loader refuses what would silently change or blow up a config: a repeated key, an
empty file, aliases that expand past a small bound; each as one line within a second. A property
test over generated YAML: the loader either accepts or raises the config error, nothing else."""

from __future__ import annotations

import resource
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semi3lib.config import MAX_YAML_NODES, ConfigError, load_config, load_yaml


def write(tmp_path, text: str, name: str = "config.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def alias_bomb(levels: int) -> str:
    """The classic "billion laughs": each level is a list of nine aliases of the one before."""
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_a_duplicate_key_names_both_lines(tmp_path):
    path = write(tmp_path, "name: a\ntrain:\n  epochs: 2\n  lr: 0.1\n  epochs: 3\n")
    with pytest.raises(ConfigError, match=r"config.yaml:5: duplicate key 'epochs' \(first on line 3\)"):
        load_yaml(path)


def test_an_empty_config_is_refused_not_read_as_all_defaults(tmp_path):
    for text in ("", "# only a comment\n"):
        with pytest.raises(ConfigError, match="the config is empty"):
            load_config(write(tmp_path, text))


@pytest.mark.parametrize("levels", [9, 12])  # 9**9 and 9**12 nodes once expanded
def test_an_alias_bomb_is_one_line_within_a_second_and_a_few_megabytes(tmp_path, levels):
    path = write(tmp_path, alias_bomb(levels))
    assert path.stat().st_size < 1000
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert time.perf_counter() - started < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 20_000  # KiB
    message = str(err.value)
    assert "\n" not in message and f"more than {MAX_YAML_NODES:,} values" in message


def test_aliases_within_the_bound_still_work(tmp_path):
    path = write(tmp_path, "name: x\ndata: &d {image_size: 64}\ntrain: {out_dir: runs/x}\n")
    assert load_config(path).data.image_size == 64


def test_an_override_with_a_duplicate_key_or_a_bomb_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="override 'data.root={a: 1, a: 2}': duplicate key 'a'"):
        load_config(None, ["data.root={a: 1, a: 2}"])
    bomb = "[" + ", ".join(["&x [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"] + ["[*x, *x, *x, *x, *x, *x, *x, *x, *x, *x]"]) + "]"
    assert load_config(None, ["name=ok"]).name == "ok"
    with pytest.raises(ConfigError):
        load_config(None, [f"train.epochs={bomb}"])


def test_python_tags_are_refused(tmp_path):
    path = write(tmp_path, "name: !!python/object/apply:os.system ['touch pwned']\n")
    with pytest.raises(ConfigError, match="YAML syntax error"):
        load_yaml(path)
    assert not (tmp_path / "pwned").exists()


SCALARS = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False), st.booleans(), st.none(),
                    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12))
KEYS = st.sampled_from(["name", "data", "model", "loss", "train", "epochs", "lr", "image_size", "x", "&a", "*a"])


def yaml_texts() -> st.SearchStrategy[str]:
    """YAML-ish text: generated mappings with random keys, scalars, anchors, aliases, merges and
    indentation, plus raw text; many are invalid, which is the point."""
    line = st.builds(lambda indent, key, sep, value: f"{' ' * indent}{key}{sep}{value}",
                     st.integers(0, 6), KEYS, st.sampled_from([": ", ":", " : ", ": &a ", ": *a", ": <<: *a"]),
                     SCALARS.map(str))
    structured = st.lists(line, max_size=12).map("\n".join)
    return st.one_of(structured, st.text(max_size=200))


@settings(max_examples=300, deadline=1000, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=yaml_texts(), override=st.text(max_size=40))
def test_any_yaml_or_override_is_accepted_or_a_config_error_within_a_second(tmp_path, text, override):
    path = tmp_path / "generated.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    for args in ((path, None), (None, [f"train.epochs={override}"]), (None, [override])):
        started = time.perf_counter()
        try:
            load_config(*args)
        except ConfigError as err:
            assert "\n" not in str(err) and len(str(err)) < 600
        assert time.perf_counter() - started < 1.0
