"""The command line's contract under arbitrary input: a bad argument or a bad ``CANHGIAC_*``
setting is one line on stderr and exit code 2 — never a traceback, never a started command.

Every option of every subcommand gets arbitrary text as its value (the parser alone: nothing
runs); every typed setting gets text that is not a valid value of its type (``main`` must stop
at the settings, before any command runs)."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import typing

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canhgiac.cli import build_parser, main
from canhgiac.settings import Settings

PARSER = build_parser()


def _options() -> list[tuple[tuple[str, ...], str]]:
    """(subcommand path, option string) of every option that takes a value, nested
    subcommands (``keys create``, ``watchlist load``...) included."""
    out: list[tuple[tuple[str, ...], str]] = []

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, (*path, name))
            elif action.option_strings and action.nargs != 0 and not isinstance(
                    action, argparse._HelpAction):
                out.append((path, action.option_strings[-1]))

    walk(PARSER, ())
    return out


OPTIONS = _options()
# argv strings cannot hold NUL; surrogates cannot reach argv from a UTF-8 command line
ARG_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                   max_size=40)


def _parse(argv: list[str]) -> tuple[int | None, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            PARSER.parse_args(argv)
        except SystemExit as exc:
            return int(exc.code or 0), err.getvalue()
    return None, err.getvalue()


def test_every_subcommand_has_options_to_fuzz():
    assert len({path[0] for path, _ in OPTIONS if path}) >= 11 and len(OPTIONS) >= 40


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(option=st.sampled_from(OPTIONS), value=ARG_TEXT, extra=st.lists(ARG_TEXT, max_size=2))
def test_any_option_value_parses_or_is_one_line_with_exit_2(option, value, extra):
    path, flag = option
    code, err = _parse([*path, flag, value, *extra])
    if code is None:
        return  # a value the option accepts (and the command's required arguments were met)
    assert code == 2, (option, value, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0], err
    assert "Traceback" not in err


@given(word=ARG_TEXT.filter(lambda w: w not in PARSER._subparsers._group_actions[0].choices))
def test_an_unknown_subcommand_is_one_line_with_exit_2(word):
    code, err = _parse([word])
    if word.startswith("-") and word in ("-h", "--help"):
        return
    assert code == 2 and len(err.strip().splitlines()) == 1, (word, err)


def _typed_fields() -> list[tuple[str, type]]:
    out = []
    for name, field in Settings.model_fields.items():
        ann = field.annotation
        args = typing.get_args(ann)
        base = next((a for a in args if a is not type(None)), ann) if args else ann
        if base in (int, float, bool):
            out.append((name, base))
    return out


TYPED = _typed_fields()
_INT = re.compile(r"\s*[+-]?[\d_]+\s*")


def _invalid(kind: type, text: str) -> bool:
    """``text`` cannot be read as a value of ``kind`` (so Settings must refuse it)."""
    if kind is bool:
        return text.strip().lower() not in {"0", "1", "true", "false", "yes", "no", "on", "off",
                                            "t", "f", "y", "n"}
    if kind is int:
        if _INT.fullmatch(text):
            return False
        try:
            return not float(text).is_integer()
        except (ValueError, OverflowError):
            return True
    try:
        float(text)
    except ValueError:
        return True
    return False


def test_there_are_typed_settings_to_fuzz():
    kinds = {k for _, k in TYPED}
    assert {int, float, bool} <= kinds and len(TYPED) >= 15


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(TYPED), text=ARG_TEXT, data=st.data())
def test_a_setting_of_the_wrong_type_is_one_line_with_exit_2(field, text, data, monkeypatch,
                                                              capsys, tmp_path):
    name, kind = field
    if not _invalid(kind, text):
        text = data.draw(st.sampled_from(["abc", "1x", "", "--", "nan?", "1e999x"]))
        if not _invalid(kind, text):
            return
    with monkeypatch.context() as env:  # one example's setting only
        env.setenv(f"CANHGIAC_{name.upper()}", text)
        env.setenv("CANHGIAC_DATA_DIR", str(tmp_path))
        # ``keys list`` would open the case store: a bad setting must stop main before that
        code = main(["keys", "list"])
    err = capsys.readouterr().err
    assert code == 2, (name, text, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"CANHGIAC_{name.upper()}" in lines[0], (name, text, err)
    assert not (tmp_path / "cases.db").exists()
