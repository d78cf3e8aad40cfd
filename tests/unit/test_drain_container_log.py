"""Which process's stdout is the container log a preStop drain should write to."""

from __future__ import annotations

from agents.drain import ProcInfo, is_long_running_agent, pick_container_main

AGENT = "/usr/local/bin/srs-agent"
CG = "0::/\n"
OTHER = "0::/../cri-containerd-srs.scope\n"


def test_long_running_agents_are_recognised() -> None:
    assert is_long_running_agent((AGENT, "sidecar"))
    assert is_long_running_agent(("/usr/bin/python3", AGENT, "reload", "--x"))
    assert is_long_running_agent(("srs-agent", "exporter"))
    assert not is_long_running_agent((AGENT, "drain"))
    assert not is_long_running_agent((AGENT,))
    assert not is_long_running_agent(("./objs/srs", "-c", "conf/srs.conf"))
    assert not is_long_running_agent(())


def test_the_hook_finds_its_containers_sidecar() -> None:
    procs = [
        ProcInfo(1, 0, 5, "0::/../pause\n", ("/pause",)),
        ProcInfo(7, 0, 10, OTHER, ("./objs/srs", "-c", "conf/srs.conf")),
        ProcInfo(12, 0, 11, CG, (AGENT, "sidecar")),
        ProcInfo(90, 0, 900, CG, ("/bin/sh", "-c", "srs-agent drain")),
        ProcInfo(91, 90, 901, CG, (AGENT, "drain", "--grace-period", "30")),
    ]
    assert pick_container_main(procs, me=91) == 12


def test_nothing_when_we_are_the_main_process_or_alone() -> None:
    sidecar = ProcInfo(12, 0, 11, CG, (AGENT, "sidecar"))
    assert pick_container_main([sidecar], me=12) is None
    lone = ProcInfo(91, 0, 901, CG, (AGENT, "drain"))
    assert pick_container_main([lone], me=91) is None
    assert pick_container_main([sidecar], me=999) is None  # we cannot see ourselves


def test_an_agent_of_another_container_is_not_ours() -> None:
    procs = [
        ProcInfo(12, 0, 11, OTHER, (AGENT, "sidecar")),
        ProcInfo(91, 0, 901, CG, (AGENT, "drain")),
    ]
    assert pick_container_main(procs, me=91) is None


def test_an_ancestor_is_never_picked_and_the_oldest_wins() -> None:
    procs = [
        ProcInfo(20, 0, 30, CG, (AGENT, "reload")),  # a parent running us: not the log
        ProcInfo(21, 20, 31, CG, (AGENT, "drain")),
        ProcInfo(13, 0, 12, CG, (AGENT, "exporter")),
        ProcInfo(12, 0, 11, CG, (AGENT, "sidecar")),
    ]
    assert pick_container_main(procs, me=21) == 12
