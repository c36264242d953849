"""The ray extra is optional: ``import routilux`` never imports ray, a missing ray
is one line, and ``ray_options`` is checked where it is passed."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import Node

from routilux import ConfigurationError, Flow


def test_import_routilux_does_not_import_ray():
    code = (
        "import sys, routilux\n"
        "from routilux import Flow\n"
        "from routilux.runtime import backends, supervisor\n"
        "Flow('x')\n"
        "bad = [m for m in ('ray', 'routilux.runtime.ray_backend') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_without_ray_execution_ray_says_to_install_the_extra():
    code = (
        "import sys\n"
        "sys.modules['ray'] = None  # as if not installed\n"
        "from routilux import Flow, Routine\n"
        "from routilux.runtime.backends import backend_for\n"
        "r = Routine()\n"
        "r.define_slot('trigger', handler=lambda: None)\n"
        "for attempt in (lambda: Flow('x').add_routine(r, 'r', execution='ray'),\n"
        "                lambda: backend_for('ray')):\n"
        "    try:\n"
        "        attempt()\n"
        "    except ValueError as exc:\n"
        "        print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, timeout=60, capture_output=True, text=True
    ).stdout.splitlines()
    assert out == ["execution='ray' needs the ray package, which is not installed: "
                   "pip install 'routilux[ray]'"] * 2


@pytest.mark.parametrize("options, message", [
    ([1], r"ray_options must be a dict of Ray actor options or None, got \[1\] \(a list\)"),
    ({"max_restarts": 3}, r"ray_options has unknown key 'max_restarts'; accepted keys: num_cpus"),
    ({"num_cpus": -1}, r"ray_options\['num_cpus'\] must be a number >= 0, got -1"),
    ({"resources": {"gpu_node": "x"}}, r"ray_options\['resources'\] must be a dict of resource"),
    ({"runtime_env": "pip"}, r"ray_options\['runtime_env'\] must be a dict"),
])
def test_bad_ray_options_are_refused_where_passed(options, message):
    with pytest.raises(ConfigurationError, match=message):
        Flow("x").add_routine(Node(), "n", execution="ray", ray_options=options)


def test_ray_options_need_execution_ray():
    with pytest.raises(ConfigurationError, match="ray_options needs execution='ray'"):
        Flow("x").add_routine(Node(), "n", execution="process", ray_options={"num_cpus": 1})


def test_ray_address_must_be_a_string():
    with pytest.raises(ConfigurationError, match="ray_address must be a non-empty string"):
        Flow("x", ray_address=6379)
