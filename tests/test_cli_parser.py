"""``limitproc``'s parser of one command (what ``main`` builds when the command comes first) reads
every command line as the parser of all commands does, and ``--help`` before a command lists them all."""

import argparse
import shlex

import pytest

from limitproc.cli import COMMANDS, EXAMPLES, build_parser, main


def parsed(parser, argv) -> dict:
    args = vars(parser.parse_args(argv))
    help_of = args.pop("command_parser").format_help()  # a parser object: compared by what it prints
    return {**args, "help": help_of}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_command_parsed_alone_reads_its_example_as_all_commands_do(name):
    argv = shlex.split(EXAMPLES[name])[1:]
    assert argv[0] == name
    assert parsed(build_parser(name), argv) == parsed(build_parser(), argv)


def test_help_before_a_command_lists_every_command(capsys):
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert sorted(sub.choices) == sorted(COMMANDS)
    for name, parser in sub.choices.items():  # each command with its one-line help (the examples name them all anyway)
        assert " ".join(parser.description.split()) in out, name
