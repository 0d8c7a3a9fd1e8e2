"""The `scaling` console script: one module per command under scaling/cli/, loaded lazily."""

import subprocess
import sys

import pytest

from scaling import cli


def test_every_command_has_its_module():
    for name, (module, _) in cli.COMMANDS.items():
        assert module == f"scaling.cli.{name}"
    assert set(cli._available()) == set(cli.COMMANDS)


@pytest.mark.parametrize("command", ["fit", "figures", "results", "verify", "profile", "sizes"])
def test_help_of_a_table_command_does_not_import_jax(command):
    code = (f"import sys\nfrom scaling.cli import main\ntry:\n    main([{command!r}, '--help'])\nexcept SystemExit:\n"
            "    pass\nprint('JAX' if 'jax' in sys.modules else 'NO JAX')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"usage: scaling {command}" in done.stdout
    assert done.stdout.strip().endswith("NO JAX")


def test_python_dash_m_runs_the_console_script():
    done = subprocess.run([sys.executable, "-m", "scaling.cli", "--version"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.startswith("scaling ")


def test_unknown_command_and_no_command(capsys):
    assert cli.main(["nope"]) == 2
    assert "unknown command 'nope'" in capsys.readouterr().err
    assert cli.main([]) == 2
    assert "commands:" in capsys.readouterr().out
