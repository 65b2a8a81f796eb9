"""`argusd completion bash|zsh`: the bash script, sourced in a real bash, completes sub-commands and options."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.assets import REPO, argusd_command

# Sources the script, then calls the function `complete -p argusd` names as bash would for the words given.
COMPLETE = """source "$1"; shift
function=$(complete -p argusd | sed -E 's/.* -F ([^ ]+) .*/\\1/')
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
"$function" argusd "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
printf '%s\\n' "${COMPREPLY[@]}"
"""


def _script(shell: str, tmp_path: Path) -> Path:
    result = subprocess.run(argusd_command("completion", shell), cwd=REPO, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    path = tmp_path / f"argusd.{shell}"
    path.write_text(result.stdout)
    return path


def _bash_completions(script: Path, *words: str) -> list[str]:
    result = subprocess.run(["bash", "-c", COMPLETE, "complete", str(script), "argusd", *words],
                            capture_output=True, text=True, timeout=30, cwd=script.parent)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_bash_completes_commands_options_and_config_files(tmp_path: Path) -> None:
    script = _script("bash", tmp_path)
    assert _bash_completions(script, "ch") == ["check-config"]
    assert set(_bash_completions(script, "")) >= {"run", "check-config", "status", "events", "completion"}
    assert _bash_completions(script, "run", "--exit") == ["--exit-when-done"]
    (tmp_path / "site.yaml").write_text("cameras: []\n")
    assert "site.yaml" in _bash_completions(script, "check-config", "si")


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh not installed")
def test_zsh_script_loads(tmp_path: Path) -> None:
    script = _script("zsh", tmp_path)
    result = subprocess.run(["zsh", "-fc", f"autoload -U compinit && compinit -u && source {script} && whence -w _shtab_argusd"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "function" in result.stdout, result.stdout + result.stderr


def test_zsh_script_is_a_compdef_for_argusd(tmp_path: Path) -> None:
    text = _script("zsh", tmp_path).read_text()
    assert text.startswith("#compdef argusd") and "check-config" in text


def test_an_unknown_shell_is_a_usage_error() -> None:
    result = subprocess.run(argusd_command("completion", "fish"), cwd=REPO, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and "invalid choice: 'fish'" in result.stderr
