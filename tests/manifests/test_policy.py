"""Policy over every rendered object: what a production SRS deployment must never lack.

Each test walks all renders and lists every offender, so one run shows the whole picture.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

import agents
from agents import cli
from agents.drain import default_state_file
from agents.drain_plan import plan_times, plan_warnings
from agents.errors import ConfigError
from agents.settings import ENV_PREFIX
from agents.srs import conf
from tests.manifests.agentcli import container_env, env_names, parse
from tests.manifests.kustomize import MANIFESTS, Obj
from tests.manifests.objects import (
    AGENT_IMAGES,
    SRS_WAIT,
    Pod,
    effective,
    env_value,
    index,
    key,
    pod_template,
    pods,
    prestop,
    selects,
)

pytestmark = pytest.mark.integration

Renders = dict[str, list[Obj]]

RUN_DIR = "/run/srs-agents"
DONE_FILE = f"{RUN_DIR}/drained"
HTML_DIR = "/usr/local/srs/objs/nginx/html"
AGENT_COMMAND = re.compile(r"(^|[\s/;&|(])srs-agent($|[\s;&|)])")  # in a shell line too
METRICS_PORT = 9973
SRS_API_PORT = 1985
# SRS notices SIGINT within a second (its main loop polls once per second), then runs
# grace_final_wait and exits; this much more is kept for the exit itself.
EXIT_SLACK = 1.0
SIGNAL_LATENCY = 1.0
# What the component sets in every SRS container (SRS reads SRS_* env over srs.conf).
SRS_ENV = {
    "SRS_INOTIFY_AUTO_RELOAD": "off",
    "SRS_AUTO_RELOAD_FOR_DOCKER": "off",
    "SRS_FORCE_GRACE_QUIT": "on",
    "SRS_GRACE_START_WAIT": "700",
    "SRS_GRACE_FINAL_WAIT": "800",
    "SRS_SRS_LOG_TANK": "console",
    "SRS_DAEMON": "off",
}
# Objects a scenario uses but another one creates (it is applied on top of that one).
EXTERNAL = {
    "scenarios/cleanup-cronjob": {"PersistentVolumeClaim/pvc-nas"},
    "scenarios/cleanup-deployment": {"PersistentVolumeClaim/pvc-nas"},
    "scenarios/demo-publisher": {"Service/srs-origin-service"},
}
# The only API access any agent has: (apiGroup, resource) -> verbs, as agents/kube and
# agents/controller call the API: ConfigMaps read, listed and watched by name (a metadata.name
# field selector), merge-patched by the controller; Leases read, created, merge-patched;
# Events created; the origins (StatefulSets, Services, EndpointSlices) listed and watched.
# Every ConfigMap and Lease verb but create names its objects. test_rbac_requests checks the
# Roles against the requests the agents really make.
RBAC_ALLOWED: dict[tuple[str, str], set[str]] = {
    ("", "configmaps"): {"get", "list", "watch", "patch"},
    ("", "events"): {"create"},
    ("", "services"): {"list", "watch"},
    ("apps", "statefulsets"): {"list", "watch"},
    ("discovery.k8s.io", "endpointslices"): {"list", "watch"},
    ("coordination.k8s.io", "leases"): {"get", "create", "patch"},
}
RBAC_NAMED = {("", "configmaps"): {"get", "list", "watch", "patch"},
              ("coordination.k8s.io", "leases"): {"get", "patch"}}


def fail_if(problems: Sequence[str]) -> None:
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)


def srs_pods(renders: Renders) -> Iterator[Pod]:
    return (p for p in pods(renders) if p.srs_containers())


def mounts(container: Obj) -> dict[str, Obj]:
    return {m["mountPath"]: m for m in container.get("volumeMounts", [])}


def srs_wait(container: Obj) -> tuple[str, int] | None:
    """(done file, bound in seconds) of the SRS container's preStop, or None if it is not the
    bounded wait for the drain."""
    command = prestop(container)
    if len(command) != 3 or command[:2] != ["/bin/sh", "-c"]:
        return None
    found = SRS_WAIT.fullmatch(command[2])
    return (found["file"], int(found["bound"])) if found else None


def volume_at(container: Obj, path: str) -> Obj | None:
    """The volume mount under which `path` lies in this container (the deepest one)."""
    found = [m for m in container.get("volumeMounts", [])
             if path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/")]
    return max(found, key=lambda m: len(m["mountPath"]), default=None)


def srs_configs(renders: Renders) -> Iterator[tuple[str, str, str]]:
    """(scenario, ConfigMap name, srs.conf text) of every ConfigMap holding an srs.conf."""
    for scenario, objs in renders.items():
        for obj in objs:
            if obj["kind"] == "ConfigMap" and "srs.conf" in obj.get("data", {}):
                yield scenario, obj["metadata"]["name"], obj["data"]["srs.conf"]


def configmaps_of(pod: Pod) -> list[str]:
    """The ConfigMap(s) an SRS pod reads srs.conf from (volume or API mode)."""
    names = [v["configMap"]["name"] for v in pod.spec.get("volumes", [])
             if v["name"] == "config-volume" and "configMap" in v]
    source = pod.annotations().get("srs-agents/reload-source", "")
    if source.startswith("configmap/"):
        names.append(source.split("/", 1)[1])
    return names


def is_edge(text: str) -> bool:
    config = conf.parse(text, "srs.conf")
    return any((d := v.get("cluster")) is not None and (m := d.get("mode")) is not None
               and m.arg0 == "remote" for v in config.vhosts())


def drain_settings(pod: Pod) -> Any:
    sidecar = pod.container("srs-agent")
    assert sidecar is not None
    command, settings = parse(prestop(sidecar)[1:], container_env(pod, sidecar))
    assert command == "drain"
    return settings


# ---------------------------------------------------------------------------------------------
# The agents and the drain wiring
# ---------------------------------------------------------------------------------------------


def test_renders_cover_both_reload_modes(renders: Renders) -> None:
    """The policy below is not vacuous: SRS pods exist in both reload modes."""
    modes = {"api" if p.annotations().get("srs-agents/reload-source") else "volume"
             for p in srs_pods(renders)}
    assert modes == {"api", "volume"}


def test_every_srs_workload_has_the_agents(renders: Renders) -> None:
    problems = []
    for pod in srs_pods(renders):
        where = pod.where
        labels = pod.workload["metadata"].get("labels", {})
        if labels.get("srs-agents/inject") != "true":
            problems.append(f"{where}: not labelled srs-agents/inject: \"true\"")
        if [c["name"] for c in pod.srs_containers()] != ["srs"]:
            problems.append(f"{where}: the SRS container must be the one named srs")
            continue
        srs = pod.container("srs")
        sidecar = pod.container("srs-agent")
        copy = next((c for c in pod.spec.get("initContainers", []) if c["name"] == "copy-html"),
                    None)
        if not pod.spec.get("shareProcessNamespace"):
            problems.append(f"{where}: shareProcessNamespace is not true")
        if sidecar is None or sidecar.get("args", [])[:1] != ["sidecar"]:
            problems.append(f"{where}: no srs-agent container running `srs-agent sidecar`")
            continue
        if copy is None or copy.get("args", [])[:1] != ["copy-html"] \
                or HTML_DIR not in mounts(copy):
            problems.append(f"{where}: no copy-html init container seeding {HTML_DIR}")
        elif srs is not None and mounts(copy)[HTML_DIR]["name"] != mounts(srs).get(
                HTML_DIR, {}).get("name"):
            problems.append(f"{where}: copy-html seeds another volume than SRS serves")
        wait = srs_wait(srs) if srs is not None else None
        if wait is None or wait[0] != DONE_FILE:
            problems.append(f"{where}: srs preStop is not the bounded wait for {DONE_FILE} "
                            f"({SRS_WAIT.pattern})")
        if prestop(sidecar)[:2] != ["srs-agent", "drain"]:
            problems.append(f"{where}: srs-agent preStop is not `srs-agent drain`")
        elif drain_settings(pod).done_file != DONE_FILE:
            problems.append(f"{where}: drain --done-file is not {DONE_FILE}")
        run = pod.volume("agents-run")
        if run is None or run.get("emptyDir", {}).get("medium") != "Memory":
            problems.append(f"{where}: no agents-run emptyDir (medium Memory)")
        for c in (srs, sidecar):
            if c is not None and mounts(c).get(RUN_DIR, {}).get("name") != "agents-run":
                problems.append(f"{where}: {c['name']} does not mount agents-run at {RUN_DIR}")
        if srs is not None and not (env_value(srs, "SRS_PID") or "").startswith(RUN_DIR + "/"):
            problems.append(f"{where}: SRS_PID is not on {RUN_DIR} (SRS's root is read-only)")
        if srs is not None:
            for name, value in SRS_ENV.items():
                if env_value(srs, name) != value:
                    problems.append(f"{where}: srs env {name} is not {value!r}")
            ids = [(effective(pod, c, "runAsUser"), effective(pod, c, "runAsGroup"))
                   for c in (srs, sidecar)]
            if ids[0] != ids[1] or ids[0][0] in (None, 0):
                problems.append(f"{where}: SRS and the sidecar must run as the same non-root "
                                f"uid/gid (a process can signal only its own uid): {ids}")
    fail_if(problems)


def test_srs_reads_the_file_the_sidecar_validates(renders: Renders) -> None:
    problems = []
    for pod in srs_pods(renders):
        srs, sidecar = pod.container("srs"), pod.container("srs-agent")
        if srs is None or sidecar is None:
            continue  # reported by test_every_srs_workload_has_the_agents
        _, settings = parse(sidecar["args"], container_env(pod, sidecar))
        wanted = f"{settings.config_dir}/{settings.config_file}"
        command = [str(a) for a in srs.get("command", []) + srs.get("args", [])]
        if "-c" not in command or command[command.index("-c") + 1] != wanted:
            problems.append(f"{pod.where}: SRS does not run -c {wanted}: {command}")
        if not re.search(settings.srs_process, " ".join(command)):
            problems.append(f"{pod.where}: --srs-process {settings.srs_process!r} does not "
                            f"match SRS's command line {command}")
        srs_mount = mounts(srs).get(settings.config_dir)
        side_mount = mounts(sidecar).get(settings.config_dir)
        if srs_mount is None or side_mount is None or srs_mount["name"] != side_mount["name"]:
            problems.append(f"{pod.where}: SRS and the sidecar do not share the volume at "
                            f"{settings.config_dir}")
        api_mode = settings.source.startswith("configmap/")
        if side_mount is not None and bool(side_mount.get("readOnly")) == api_mode:
            problems.append(f"{pod.where}: the sidecar's config mount must be "
                            f"{'writable (API mode)' if api_mode else 'read-only'}")
    fail_if(problems)


def test_drain_deadline_fits_the_grace_period(renders: Renders) -> None:
    """--grace-period is the pod's terminationGracePeriodSeconds; the drain's deadline plus its
    margin fit in it, the margin covering SRS's exit after SIGINT and then the sidecar's
    --final-scrape-wait (the sidecar gets SIGTERM when the drain returns); SRS's own preStop
    gives up after the drain's deadline and early enough for SRS to quit before the SIGKILL."""
    problems = []
    checked = 0
    for pod in srs_pods(renders):
        srs, sidecar = pod.container("srs"), pod.container("srs-agent")
        if srs is None or sidecar is None:
            continue
        drain = drain_settings(pod)
        _, side = parse(sidecar["args"], container_env(pod, sidecar))
        grace = float(pod.spec.get("terminationGracePeriodSeconds", 30))
        start_wait = float(env_value(srs, "SRS_GRACE_START_WAIT") or 2300) / 1000
        final_wait = float(env_value(srs, "SRS_GRACE_FINAL_WAIT") or 3200) / 1000
        srs_exit = SIGNAL_LATENCY + final_wait + EXIT_SLACK  # after SIGINT
        deadline = drain.deadline or grace - drain.deadline_margin
        checked += 1
        if drain.grace_period != grace:
            problems.append(f"{pod.where}: drain --grace-period {drain.grace_period:g} != "
                            f"terminationGracePeriodSeconds {grace:g}")
        if deadline <= 0 or grace - deadline < srs_exit + side.final_scrape_wait:
            problems.append(
                f"{pod.where}: the drain's deadline {deadline:g}s leaves {grace - deadline:g}s "
                f"of the grace period {grace:g}s; SRS's exit after SIGINT ({srs_exit:g}s) and "
                f"the sidecar's --final-scrape-wait ({side.final_scrape_wait:g}s) need more")
        if drain.pre_stop_delay >= deadline:
            problems.append(f"{pod.where}: --pre-stop-delay reaches the deadline")
        try:  # what the drain itself checks at start, and warns about
            times = plan_times(drain.deadline, drain.grace_period, drain.deadline_margin,
                               drain.pre_stop_delay)
            problems += [f"{pod.where}: drain warns: {w}"
                         for w in plan_warnings(times, final_wait)]
        except ConfigError as exc:
            problems.append(f"{pod.where}: drain refuses its settings: {exc}")
        wait = srs_wait(srs)
        if wait is None:
            continue  # reported by test_every_srs_workload_has_the_agents
        bound = wait[1]
        if bound < deadline + srs_exit:
            problems.append(f"{pod.where}: SRS's preStop gives up after {bound}s, before a "
                            f"drain that reaches its deadline ({deadline:g}s) has ended "
                            f"(+{srs_exit:g}s)")
        srs_quit = SIGNAL_LATENCY + start_wait + final_wait + EXIT_SLACK  # after SIGTERM
        if bound + srs_quit > grace:
            problems.append(f"{pod.where}: SRS's preStop waits up to {bound}s: with no drain, "
                            f"SRS's SIGTERM comes too late to quit ({srs_quit:g}s) inside the "
                            f"grace period {grace:g}s")
    assert checked, "no SRS pod with a drain"
    fail_if(problems)


def test_drain_files_are_shared(renders: Renders) -> None:
    """The drain's done file is what SRS's preStop waits for and what the sidecar clears at
    start; the drain's state file (beside the done file) is what the sidecar exports; all of
    them on one writable volume that both containers mount at the same place."""
    problems = []
    checked = 0
    for pod in srs_pods(renders):
        srs, sidecar = pod.container("srs"), pod.container("srs-agent")
        wait = srs_wait(srs) if srs is not None else None
        if srs is None or sidecar is None or wait is None:
            continue  # reported by test_every_srs_workload_has_the_agents
        checked += 1
        drain = drain_settings(pod)
        _, side = parse(sidecar["args"], container_env(pod, sidecar))
        state = default_state_file(drain)
        for what, path, wanted in (("sidecar --drain-done-file", side.drain_done_file,
                                    drain.done_file),
                                   ("SRS's preStop", wait[0], drain.done_file),
                                   ("sidecar --drain-state-file", side.drain_state_file, state)):
            if not path or path != wanted:
                problems.append(f"{pod.where}: {what} is {path!r}, the drain writes {wanted!r}")
        for path in {drain.done_file, state}:
            where = [(c["name"], volume_at(c, path)) for c in (srs, sidecar)]
            names = {m["name"] if m else None for _, m in where}
            if None in names or len(names) != 1:
                problems.append(f"{pod.where}: {path} is not on one volume in both "
                                f"containers: {where}")
            elif any(m is not None and m.get("readOnly") for _, m in where[1:]):
                problems.append(f"{pod.where}: the sidecar mounts {path} read-only")
    assert checked, "no SRS pod with a drain"
    fail_if(problems)


def test_srs_configs_leave_reload_to_the_sidecar(renders: Renders) -> None:
    """Every example srs.conf: SRS's own inotify reload off, console log, pid on the shared
    tmpfs, no daemon, the HTTP API on (the sidecar reads it)."""
    problems = []
    seen = 0
    for scenario, name, text in srs_configs(renders):
        seen += 1
        config = conf.parse(text, name)
        for directive, value in (("inotify_auto_reload", "off"), ("auto_reload_for_docker", "off"),
                                 ("daemon", "off"), ("srs_log_tank", "console")):
            found = config.get(directive)
            if found is None or found.arg0 != value:
                problems.append(f"{scenario}: ConfigMap {name}: `{directive} {value};` missing")
        pid = config.get("pid")
        if pid is None or not pid.arg0.startswith(RUN_DIR + "/"):
            problems.append(f"{scenario}: ConfigMap {name}: pid is not under {RUN_DIR}")
        api = config.get("http_api", "enabled")
        if api is None or api.arg0 != "on":
            problems.append(f"{scenario}: ConfigMap {name}: http_api is not enabled")
    assert seen, "no srs.conf in any render"
    fail_if(problems)


def test_edges_quit_gracefully(renders: Renders) -> None:
    """Where edges drain, SRS quits gracefully as the guide sets it, in srs.conf and in env."""
    problems = []
    by_scenario = {s: index(objs) for s, objs in renders.items()}
    edges = 0
    for pod in srs_pods(renders):
        for name in configmaps_of(pod):
            text = by_scenario[pod.scenario].get(f"ConfigMap/{name}", {}).get(
                "data", {}).get("srs.conf", "")
            if not text or not is_edge(text):
                continue
            edges += 1
            config = conf.parse(text, name)
            for directive, value in (("force_grace_quit", "on"), ("grace_start_wait", "700"),
                                     ("grace_final_wait", "800")):
                found = config.get(directive)
                if found is None or found.arg0 != value:
                    problems.append(f"{pod.where}: {name}: `{directive} {value};` missing")
    assert edges, "no edge in any render"
    fail_if(problems)


def test_example_configs_pass_check_config(renders: Renders, tmp_path: Path) -> None:
    """`srs-agent check-config` (what the sidecar runs before each reload) accepts them."""
    failed = []
    for i, (scenario, name, text) in enumerate(srs_configs(renders)):
        path = tmp_path / f"{i}-{name}.conf"
        path.write_text(text)
        if cli.main(["check-config", str(path)], environ={}) != 0:
            failed.append(f"{scenario}: ConfigMap {name}")
    fail_if(failed)


def exec_commands(container: Obj) -> Iterator[tuple[str, list[str]]]:
    """(where, command) of every exec the kubelet runs in a container: hooks and probes."""
    for hook in ("postStart", "preStop"):
        command = container.get("lifecycle", {}).get(hook, {}).get("exec", {}).get("command")
        if command:
            yield hook, [str(a) for a in command]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        command = container.get(probe, {}).get("exec", {}).get("command")
        if command:
            yield probe, [str(a) for a in command]


def test_agent_command_lines_parse(renders: Renders) -> None:
    """Every `srs-agent ...` of a container, hook or probe, with the container's env, is accepted
    by the agents' own settings: each flag spelt in full, each value in range. Every SRS_AGENT_*
    variable of a container is read by a command that runs there (an unknown one is ignored by
    the agents, so a misspelt name would silently do nothing)."""
    problems = []
    count = 0
    for pod in pods(renders):
        for c in pod.containers():
            where = f"{pod.where}: {c['name']}"
            env = container_env(pod, c)
            command = [str(a) for a in c.get("command", [])]
            lines: list[tuple[str, list[str]]] = []
            if AGENT_IMAGES.search(c.get("image", "")) and command != ["srs-agent"]:
                problems.append(f"{where}: an agent image with command {command}, not "
                                "[srs-agent] (the command line must be explicit here)")
            if command[:1] == ["srs-agent"]:
                lines.append(("args", command[1:] + [str(a) for a in c.get("args", [])]))
            for what, line in exec_commands(c):
                if line[:1] == ["srs-agent"]:
                    lines.append((what, line[1:]))
                elif any(AGENT_COMMAND.search(word) for word in line):
                    problems.append(f"{where}: {what} runs srs-agent through {line[0]}; run "
                                    "it directly so its flags can be checked")
            if any("SRS_AGENT_" in (e.get("prefix") or "") or "prefix" not in e
                   for e in c.get("envFrom", [])):
                problems.append(f"{where}: envFrom may set SRS_AGENT_* variables that cannot "
                                "be checked; use env")
            known: set[str] = set()
            for what, args in lines:
                count += 1
                try:
                    command_name, _ = parse(args, env)
                except AssertionError as exc:
                    problems.append(f"{where}: {what}: {exc}")
                    continue
                known |= env_names(command_name)
            names = {str(e["name"]) for e in c.get("env", [])}
            for name in sorted(n for n in names if n.startswith(ENV_PREFIX)):
                if name not in known:
                    problems.append(f"{where}: env {name} is read by none of its commands "
                                    f"({', '.join(w for w, _ in lines) or 'none'})")
    assert count, "no srs-agent command in any render"
    fail_if(problems)


# ---------------------------------------------------------------------------------------------
# Kubernetes hygiene
# ---------------------------------------------------------------------------------------------


def test_cronjobs(renders: Renders) -> None:
    problems = []
    cronjobs = [(s, o) for s, objs in renders.items() for o in objs if o["kind"] == "CronJob"]
    assert cronjobs, "no CronJob in any render"
    for scenario, obj in cronjobs:
        where = f"{scenario}: CronJob/{obj['metadata']['name']}"
        spec = obj["spec"]
        job = spec.get("jobTemplate", {}).get("spec", {})
        if obj["apiVersion"] != "batch/v1":
            problems.append(f"{where}: apiVersion {obj['apiVersion']} (batch/v1 only)")
        if spec.get("concurrencyPolicy") != "Forbid":
            problems.append(f"{where}: concurrencyPolicy is not Forbid")
        if not spec.get("startingDeadlineSeconds"):
            problems.append(f"{where}: no startingDeadlineSeconds")
        if not job.get("ttlSecondsAfterFinished"):
            problems.append(f"{where}: no ttlSecondsAfterFinished")
    fail_if(problems)


def test_every_container_has_resources(renders: Renders) -> None:
    problems = []
    for pod in pods(renders):
        for c in pod.containers():
            res = c.get("resources", {})
            for section, names in (("requests", ("cpu", "memory")), ("limits", ("memory",))):
                missing = [n for n in names if n not in res.get(section, {})]
                if missing:
                    problems.append(f"{pod.where}: {c['name']}: no {section} {missing}")
    fail_if(problems)


def test_images_are_pinned(renders: Renders) -> None:
    problems = []
    for pod in pods(renders):
        for c in pod.containers():
            image = c["image"]
            last = image.rsplit("/", 1)[-1]
            tag = last.rpartition(":")[2] if ":" in last else ""
            if "@sha256:" not in image and (not tag or tag == "latest"):
                problems.append(f"{pod.where}: {c['name']}: image {image} is not pinned")
            if AGENT_IMAGES.search(image) and tag != agents.__version__:
                problems.append(f"{pod.where}: {c['name']}: {image} is not the release "
                                f"{agents.__version__}")
    fail_if(problems)


def test_agent_image_pins_agree() -> None:
    """srs-agents and srs-agents-api both pin the agent image (the latter adds config-init
    after the former's images transformer ran): the pins must be the same."""
    pins = set()
    for component in ("srs-agents", "srs-agents-api"):
        doc = yaml.safe_load((MANIFESTS / "components" / component / "kustomization.yaml")
                             .read_text())
        pins |= {(i["name"], i.get("newName"), i["newTag"]) for i in doc.get("images", [])}
    assert pins == {("ghcr.io/srs-agents/srs-agent", None, agents.__version__)}


def test_security_contexts(renders: Renders) -> None:
    """Every container: non-root, no privilege escalation, no capabilities, read-only root
    filesystem, seccomp RuntimeDefault; no host namespaces or host paths."""
    problems = []
    for pod in pods(renders):
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            if pod.spec.get(field):
                problems.append(f"{pod.where}: {field}")
        for v in pod.spec.get("volumes", []):
            if "hostPath" in v:
                problems.append(f"{pod.where}: hostPath volume {v['name']}")
        for c in pod.containers():
            sc = c.get("securityContext") or {}
            where = f"{pod.where}: {c['name']}"
            if effective(pod, c, "runAsNonRoot") is not True or effective(
                    pod, c, "runAsUser") in (0, None):
                problems.append(f"{where}: not non-root with a numeric runAsUser")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if sc.get("privileged"):
                problems.append(f"{where}: privileged")
            caps = sc.get("capabilities") or {}
            if "ALL" not in caps.get("drop", []) or caps.get("add"):
                problems.append(f"{where}: capabilities are not drop [ALL] with none added")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: root filesystem is not read-only")
            seccomp = effective(pod, c, "seccompProfile") or {}
            if seccomp.get("type") != "RuntimeDefault":
                problems.append(f"{where}: seccompProfile is not RuntimeDefault")
    fail_if(problems)


def test_rbac_is_namespaced_and_least_privilege(renders: Renders) -> None:
    problems = []
    for scenario, objs in renders.items():
        objects = index(objs)
        for obj in objs:
            where = f"{scenario}: {key(obj)}"
            if obj["kind"] in ("ClusterRole", "ClusterRoleBinding"):
                problems.append(f"{where}: cluster-wide RBAC")
            if obj["kind"] == "ServiceAccount" and obj.get("automountServiceAccountToken") \
                    is not False:
                problems.append(f"{where}: must not mount its token by default")
            if obj["kind"] == "RoleBinding":
                if f"Role/{obj['roleRef']['name']}" not in objects:
                    problems.append(f"{where}: binds missing Role {obj['roleRef']['name']}")
                for s in obj.get("subjects", []):
                    if s.get("kind") != "ServiceAccount" or \
                            f"ServiceAccount/{s['name']}" not in objects:
                        problems.append(f"{where}: subject {s} is not a ServiceAccount here")
            if obj["kind"] != "Role":
                continue
            for rule in obj.get("rules", []):
                named = bool(rule.get("resourceNames"))
                verbs = set(rule.get("verbs", []))
                for group in rule.get("apiGroups", []):
                    for resource in rule.get("resources", []):
                        allowed = RBAC_ALLOWED.get((group, resource), set())
                        if not verbs <= allowed:
                            problems.append(f"{where}: {sorted(verbs - allowed)} on "
                                            f"{group or 'core'}/{resource}")
                        needs_name = verbs & RBAC_NAMED.get((group, resource), set())
                        if needs_name and not named:
                            problems.append(f"{where}: {sorted(needs_name)} on "
                                            f"{group or 'core'}/{resource} without resourceNames")
    fail_if(problems)


def test_api_access_only_where_used(renders: Renders) -> None:
    """A pod gets an API token only with its own ServiceAccount, bound to a Role here."""
    problems = []
    for pod in pods(renders):
        objects = index(renders[pod.scenario])
        sa_name = pod.spec.get("serviceAccountName", "default")
        sa = objects.get(f"ServiceAccount/{sa_name}", {})
        mounted = pod.spec.get("automountServiceAccountToken",
                               sa.get("automountServiceAccountToken", True))
        if not mounted:
            continue
        if sa_name == "default" or not sa:
            problems.append(f"{pod.where}: mounts a token of ServiceAccount {sa_name}, "
                            "which is not one of ours")
        bound = [o for o in objects.values() if o["kind"] == "RoleBinding"
                 and any(s.get("name") == sa_name for s in o.get("subjects", []))]
        if not bound:
            problems.append(f"{pod.where}: ServiceAccount {sa_name} has no RoleBinding")
    fail_if(problems)


def test_api_mode_wiring(renders: Renders) -> None:
    """API-mode pods: the ConfigMap named in srs-agents/reload-source exists, the pod's
    ServiceAccount may get and watch it by name, and config-init writes it before SRS starts."""
    problems = []
    for pod in srs_pods(renders):
        source = pod.annotations().get("srs-agents/reload-source")
        if source is None:
            continue
        objects = index(renders[pod.scenario])
        name = source.removeprefix("configmap/")
        if f"ConfigMap/{name}" not in objects:
            problems.append(f"{pod.where}: ConfigMap {name} is not in the render")
        sa = pod.spec.get("serviceAccountName", "default")
        roles = [objects.get(f"Role/{b['roleRef']['name']}", {}) for b in objects.values()
                 if b["kind"] == "RoleBinding"
                 and any(s.get("name") == sa for s in b.get("subjects", []))]
        if not any(set(rule.get("verbs", [])) >= {"get", "watch"}
                   and "configmaps" in rule.get("resources", [])
                   and name in rule.get("resourceNames", [])
                   for role in roles for rule in role.get("rules", [])):
            problems.append(f"{pod.where}: ServiceAccount {sa} may not watch ConfigMap {name}")
        init = next((c for c in pod.spec.get("initContainers", [])
                     if c.get("args", [])[:1] == ["reload"]), None)
        if init is None:
            problems.append(f"{pod.where}: no `srs-agent reload --once` init container")
        else:
            _, settings = parse(init["args"], container_env(pod, init))
            if not settings.once or settings.source != source:
                problems.append(f"{pod.where}: the init container does not write {source} once")
        if pod.volume("config-volume") is not None:
            problems.append(f"{pod.where}: API mode, yet a config-volume is still defined")
    fail_if(problems)


def test_nothing_exposed_but_metrics(renders: Renders) -> None:
    """The agents open one port (metrics); no Service routes to it; no load balancer or node
    port reaches SRS's HTTP API (it can kick clients and reload SRS)."""
    problems = []
    for pod in pods(renders):
        for c in pod.containers():
            if AGENT_IMAGES.search(c["image"]):
                ports = [(p.get("name"), p["containerPort"]) for p in c.get("ports", [])]
                if ports not in ([], [("metrics", METRICS_PORT)]):
                    problems.append(f"{pod.where}: {c['name']} opens {ports}")
    for scenario, objs in renders.items():
        for obj in objs:
            if obj["kind"] != "Service":
                continue
            public = obj["spec"].get("type") in ("LoadBalancer", "NodePort")
            for port in obj["spec"].get("ports", []):
                target = port.get("targetPort", port["port"])
                if target in (METRICS_PORT, "metrics"):
                    problems.append(f"{scenario}: {key(obj)} routes to the agents' metrics port")
                if public and target in (SRS_API_PORT, "api"):
                    problems.append(f"{scenario}: {key(obj)} puts SRS's API on a public port")
    fail_if(problems)


# ---------------------------------------------------------------------------------------------
# Everything referenced exists
# ---------------------------------------------------------------------------------------------


def referenced_services(pod: Pod, objects: Mapping[str, Obj]) -> Iterator[str]:
    """Services a pod connects to: SRS cluster links (origin, coworkers), URLs in arguments."""
    for name in configmaps_of(pod):
        text = objects.get(f"ConfigMap/{name}", {}).get("data", {}).get("srs.conf", "")
        config = conf.parse(text, name) if text else None
        for vhost in config.vhosts() if config else []:
            cluster = vhost.get("cluster")
            for directive in ("origin", "coworkers"):
                found = cluster.get(directive) if cluster else None
                for host in found.args if found else []:
                    yield service_of(host)
    for c in pod.containers():
        for arg in [str(a) for a in c.get("command", []) + c.get("args", [])]:
            for host in re.findall(r"\b(?:rtmp|https?)://([A-Za-z0-9.-]+)", arg):
                yield service_of(host)


def service_of(host: str) -> str:
    """'srs-origin-0.socs:1985' -> 'socs' (a pod of a headless Service); 'svc:1935' -> 'svc'."""
    labels = host.split(":", 1)[0].split(".")
    return labels[1] if len(labels) > 1 and labels[1] not in ("svc", "cluster") else labels[0]


def test_references_resolve(renders: Renders) -> None:
    problems = []
    for pod in pods(renders):
        objects = index(renders[pod.scenario])
        external = EXTERNAL.get(pod.scenario, set())

        def need(ref: str, what: str, pod: Pod = pod, objects: Mapping[str, Obj] = objects,
                 external: set[str] = external) -> None:
            if ref not in objects and ref not in external:
                problems.append(f"{pod.where}: {what} {ref} is not in the render")

        for v in pod.spec.get("volumes", []):
            if "configMap" in v:
                need(f"ConfigMap/{v['configMap']['name']}", "volume")
            if "persistentVolumeClaim" in v:
                need(f"PersistentVolumeClaim/{v['persistentVolumeClaim']['claimName']}", "volume")
        if "serviceAccountName" in pod.spec:
            need(f"ServiceAccount/{pod.spec['serviceAccountName']}", "serviceAccountName")
        for service in referenced_services(pod, objects):
            need(f"Service/{service}", "connects to")
        defined = {v["name"] for v in pod.spec.get("volumes", [])}
        used = {m["name"] for c in pod.containers() for m in c.get("volumeMounts", [])}
        if used - defined:
            problems.append(f"{pod.where}: mounts undefined volumes {sorted(used - defined)}")
        if defined - used:
            problems.append(f"{pod.where}: volumes nothing mounts {sorted(defined - used)}")
    fail_if(problems)


def test_services_reach_pods(renders: Renders) -> None:
    """Every Service selects pods of this render, on ports those pods declare."""
    problems = []
    for scenario, objs in renders.items():
        workloads = [o for o in objs if o["kind"] in ("Deployment", "StatefulSet")]
        for svc in (o for o in objs if o["kind"] == "Service"):
            chosen = [w for w in workloads if selects(svc["spec"].get("selector", {}), w)]
            if not chosen:
                problems.append(f"{scenario}: {key(svc)} selects no pod")
            for w in chosen:
                pod = Pod(scenario, w, *pod_template(w))
                declared: set[Any] = set()
                for c in pod.containers(init=False):
                    for p in c.get("ports", []):
                        declared |= {p["containerPort"], p.get("name")}
                for port in svc["spec"].get("ports", []):
                    if port.get("targetPort", port["port"]) not in declared:
                        problems.append(f"{scenario}: {key(svc)} port {port.get('name')} "
                                        f"targets {port.get('targetPort')}, not a port of "
                                        f"{key(w)}")
    fail_if(problems)


def test_external_references_are_real(renders: Renders) -> None:
    """What EXTERNAL lets a scenario borrow is created by some other scenario."""
    everything = {key(o) for objs in renders.values() for o in objs}
    missing = [f"{s}: {ref}" for s, refs in EXTERNAL.items() for ref in refs
               if ref not in everything]
    fail_if(missing)
