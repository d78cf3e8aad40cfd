"""Draw one SVG per scenario in manifests/scenarios/ from its rendered objects: images/<name>.svg.

The pictures are generated from `kubectl kustomize` output, never drawn by hand, so they cannot
drift from the manifests (a test renders them again and compares). Pure Python, no Graphviz: a
fixed three-column layout (Services | workloads | configuration and storage) written as SVG.

    .venv/bin/python tools/render_images.py            # rewrite images/*.svg
    .venv/bin/python tools/render_images.py --check    # exit 1 if any picture is out of date
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import yaml

from agents.srs import conf

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "manifests" / "scenarios"
IMAGES = REPO / "images"

Obj = Mapping[str, Any]

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job")
SRS_IMAGE = re.compile(r"(^|/)ossrs/srs(:|@|$)")
URL_HOST = re.compile(r"\b(?:rtmp|http|https|srt)://([A-Za-z0-9.-]+)")
URL = re.compile(r"\b(?:rtmp|http|https|srt)://[^\s;'\"]+")


# ---------------------------------------------------------------------------------------------
# Rendering the kustomizations (the only I/O besides writing the files)
# ---------------------------------------------------------------------------------------------


def scenario_dirs(root: Path = SCENARIOS) -> list[Path]:
    return sorted(p.parent for p in root.glob("*/kustomization.yaml"))


def kustomize(path: Path, kubectl: str | None = None) -> list[dict[str, Any]]:
    """`kubectl kustomize path`, parsed; raises RuntimeError with kubectl's message."""
    exe = kubectl or shutil.which("kubectl")
    if exe is None:
        raise RuntimeError(
            "kubectl not found on PATH: the pictures are drawn from `kubectl kustomize` output; "
            "install kubectl 1.27 or newer")
    proc = subprocess.run([exe, "kustomize", str(path)], capture_output=True, text=True,
                          check=False, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {path} failed: {proc.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


# ---------------------------------------------------------------------------------------------
# Model: what the picture shows (pure: objects in, plain values out)
# ---------------------------------------------------------------------------------------------


@dataclass
class Node:
    key: str                      # "Service/name", "Deployment/name", ...
    title: str                    # first line, bold
    lines: list[str] = field(default_factory=list)
    sections: list[tuple[str, list[str]]] = field(default_factory=list)  # (label, lines) boxes
    badge: str = ""               # e.g. LoadBalancer
    external: bool = False        # referenced, not part of this scenario


@dataclass
class Diagram:
    name: str
    services: list[Node]
    workloads: list[Node]
    resources: list[Node]         # ConfigMaps, claims, volumes, RBAC
    selects: list[tuple[str, str]]          # Service -> workload
    connects: list[tuple[str, str]]         # workload -> Service (network clients)
    uses: list[tuple[str, str, str]]        # workload -> resource, label


def short_image(image: str) -> str:
    """The image without its registry host: 'ghcr.io/a/b:1' -> 'a/b:1'."""
    first, _, rest = image.partition("/")
    return rest if rest and ("." in first or ":" in first) else image


def pod_template(obj: Obj) -> tuple[Obj, Obj]:
    """(metadata, spec) of the pods a workload runs."""
    spec = obj.get("spec", {})
    if obj["kind"] == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    template = spec.get("template", {})
    return template.get("metadata", {}), template.get("spec", {})


def cluster_hosts(conf_text: str) -> Iterator[tuple[str, list[str]]]:
    """(directive, hosts) of every `origin` and `coworkers` in an srs.conf, read with the
    project's own parser (agents.srs.conf)."""
    if not conf_text:
        return
    config = conf.parse(conf_text, "srs.conf")
    for vhost in config.vhosts():
        cluster = vhost.get("cluster")
        for name in ("origin", "coworkers"):
            directive = cluster.get(name) if cluster else None
            if directive is not None and directive.args:
                yield name, list(directive.args)


def host_service(host: str) -> str:
    """'srs-origin-0.socs:1985' -> 'socs' (a pod of a headless Service); 'svc:1935' -> 'svc'."""
    host = host.split(":", 1)[0]
    labels = host.split(".")
    if len(labels) >= 2 and labels[1] not in ("svc", "cluster"):
        return labels[1]
    return labels[0]


POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"


def matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def selects_pods(selector: Mapping[str, str], workload: Obj) -> bool:
    """Does a Service selector pick pods of this workload? StatefulSet pods also carry
    statefulset.kubernetes.io/pod-name=<name>-<ordinal>, set by the controller at run time."""
    labels = dict(pod_template(workload)[0].get("labels", {}))
    selector = dict(selector)
    pod_name = selector.pop(POD_NAME_LABEL, None)
    if pod_name is not None:
        name = workload["metadata"]["name"]
        ordinal = pod_name.removeprefix(name + "-")
        replicas = int(workload.get("spec", {}).get("replicas", 1))
        if workload["kind"] != "StatefulSet" or not ordinal.isdigit() \
                or int(ordinal) >= replicas or pod_name == ordinal:
            return False
        return all(labels.get(k) == v for k, v in selector.items())
    return matches(selector, labels)


def volume_source(vol: Obj) -> tuple[str, str]:
    """(kind, detail) of a pod volume."""
    if "configMap" in vol:
        return "configMap", vol["configMap"]["name"]
    if "persistentVolumeClaim" in vol:
        return "pvc", vol["persistentVolumeClaim"]["claimName"]
    if "emptyDir" in vol:
        medium = vol["emptyDir"].get("medium", "")
        return "emptyDir", "tmpfs" if medium == "Memory" else "disk"
    if "secret" in vol:
        return "secret", vol["secret"]["secretName"]
    return next(iter(k for k in vol if k != "name")), ""


def rule_text(rule: Obj) -> str:
    groups = ",".join(g or "core" for g in rule.get("apiGroups", []))
    res = ",".join(rule.get("resources", []))
    verbs = ",".join(rule.get("verbs", []))
    names = rule.get("resourceNames")
    scope = f" [{','.join(names)}]" if names else ""
    return f"{res}{scope} ({groups}): {verbs}"


# Flags that say what an agent does (shown with their value); the rest is detail.
MODE_FLAGS = ("--once", "--schedule", "--origin-statefulset", "--origin-selector")


def agent_command(args: Sequence[str]) -> str:
    words = ["srs-agent", args[0]]
    for i, arg in enumerate(args):
        if arg in MODE_FLAGS:
            words.append(arg)
            if arg != "--once" and i + 1 < len(args):
                words.append(f'"{args[i + 1]}"' if " " in args[i + 1] else args[i + 1])
    return " ".join(words)


def container_lines(container: Obj, init: bool) -> list[str]:
    ports = "  ".join(f":{p['containerPort']} {p.get('name', '')}".rstrip()
                      for p in container.get("ports", []))
    lines = [f"{'init ' if init else ''}{container['name']}  {short_image(container['image'])}"]
    command = [str(a) for a in container.get("command", [])]
    args = [str(a) for a in container.get("args", [])]
    if command == ["srs-agent"] and args:
        lines.append("  " + agent_command(args))
    extra = []
    if ports:
        extra.append(ports)
    pre = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    if pre[:2] == ["srs-agent", "drain"]:
        extra.append("preStop: drain")
    elif pre and "drained" in " ".join(pre):
        extra.append("preStop: wait for drain")
    if extra:
        lines.append("  " + "  ".join(extra))
    return lines


def model(name: str, objects: Sequence[Obj]) -> Diagram:
    by_key = {f"{o['kind']}/{o['metadata']['name']}": o for o in objects}
    services: list[Node] = []
    workloads: list[Node] = []
    resources: dict[str, Node] = {}
    selects: list[tuple[str, str]] = []
    connects: list[tuple[str, str]] = []
    uses: list[tuple[str, str, str]] = []
    pods: dict[str, Obj] = {}  # workload key -> pod template labels

    def resource(key: str, title: str, lines: list[str]) -> None:
        if key not in resources:
            resources[key] = Node(key, title, lines, external=key not in by_key)

    for obj in objects:
        kind, oname = obj["kind"], obj["metadata"]["name"]
        key = f"{kind}/{oname}"
        if kind not in WORKLOAD_KINDS:
            continue
        meta, spec = pod_template(obj)
        pods[key] = meta.get("labels", {})
        spec_top = obj.get("spec", {})
        if kind == "CronJob":
            title = f"CronJob {oname}  {spec_top.get('schedule', '')}"
            tz = spec_top.get("timeZone")
            if tz:
                title += f" {tz}"
            job = spec_top.get("jobTemplate", {}).get("spec", {})
            policy = [f"concurrency {spec_top.get('concurrencyPolicy', 'Allow')}"]
            if "startingDeadlineSeconds" in spec_top:
                policy.append(f"starting deadline {spec_top['startingDeadlineSeconds']}s")
            if "ttlSecondsAfterFinished" in job:
                policy.append(f"Job TTL {job['ttlSecondsAfterFinished']}s")
        else:
            title = f"{kind} {oname}  x{spec_top.get('replicas', 1)}"
        node = Node(key, title)
        if kind == "CronJob":
            node.lines.append(", ".join(policy))
        for init, group in ((True, spec.get("initContainers", [])),
                            (False, spec.get("containers", []))):
            for c in group:
                node.sections.append(("init" if init else "", container_lines(c, init)))
        vols = []
        for vol in spec.get("volumes", []):
            vkind, detail = volume_source(vol)
            if vkind == "configMap":
                resource(f"ConfigMap/{detail}", f"ConfigMap {detail}",
                         config_lines(by_key.get(f"ConfigMap/{detail}")))
                uses.append((key, f"ConfigMap/{detail}", "mount"))
            elif vkind == "pvc":
                claim = by_key.get(f"PersistentVolumeClaim/{detail}")
                resource(f"PersistentVolumeClaim/{detail}", f"PersistentVolumeClaim {detail}",
                         claim_lines(claim, by_key))
                ro = vol["persistentVolumeClaim"].get("readOnly", False)
                uses.append((key, f"PersistentVolumeClaim/{detail}", "ro" if ro else "rw"))
            else:
                vols.append(f"{vol['name']} ({vkind}{', ' + detail if detail else ''})")
        if vols:
            node.lines.append("volumes: " + ", ".join(vols))
        annotations = meta.get("annotations", {})
        source = annotations.get("srs-agents/reload-source", "")
        if source.startswith("configmap/"):
            cm = source.split("/", 1)[1]
            resource(f"ConfigMap/{cm}", f"ConfigMap {cm}",
                     config_lines(by_key.get(f"ConfigMap/{cm}")))
            uses.append((key, f"ConfigMap/{cm}", "watch (API)"))
            node.lines.append(f"reload: API watch of ConfigMap {cm}")
        sa = spec.get("serviceAccountName")
        if sa and spec.get("automountServiceAccountToken", True):
            rbac_key = f"ServiceAccount/{sa}"
            resource(rbac_key, f"ServiceAccount {sa}", rbac_lines(sa, objects))
            uses.append((key, rbac_key, "API"))
        # Whom it talks to: SRS cluster links, URLs in arguments, ConfigMaps the controller writes.
        targets: list[str] = []
        for c in spec.get("initContainers", []) + spec.get("containers", []):
            args = [str(a) for a in c.get("command", []) + c.get("args", [])]
            for arg in args:
                targets += [host_service(h) for h in URL_HOST.findall(arg)]
                node.lines += [f"connects to {url}" for url in URL.findall(arg)]
            for flag in ("--edge-configmap", "--origin-configmap"):
                if flag in args and args.index(flag) + 1 < len(args):
                    cm = args[args.index(flag) + 1]
                    resource(f"ConfigMap/{cm}", f"ConfigMap {cm}",
                             config_lines(by_key.get(f"ConfigMap/{cm}")))
                    uses.append((key, f"ConfigMap/{cm}", "writes"))
            if SRS_IMAGE.search(c.get("image", "")):
                for cm in srs_configmaps(spec, annotations):
                    text = by_key.get(f"ConfigMap/{cm}", {}).get("data", {}).get("srs.conf", "")
                    for directive, hosts in cluster_hosts(text):
                        role = "pulls from" if directive == "origin" else "asks"
                        targets += [host_service(host) for host in hosts]
                        node.lines.append(f"{role} {' '.join(hosts)}")
        for target in dict.fromkeys(targets):
            connects.append((key, f"Service/{target}"))
        workloads.append(node)

    for obj in objects:
        if obj["kind"] != "Service":
            continue
        oname = obj["metadata"]["name"]
        spec = obj.get("spec", {})
        stype = "headless" if spec.get("clusterIP") == "None" else spec.get("type", "ClusterIP")
        ports = ", ".join(
            f"{p['port']}->{p.get('targetPort', p['port'])}" for p in spec.get("ports", []))
        node = Node(f"Service/{oname}", f"Service {oname}", [ports], badge=stype)
        selector = spec.get("selector", {})
        node.lines.append("selects " + ",".join(f"{k}={v}" for k, v in selector.items()))
        if any(k.startswith("service.beta.kubernetes.io/alicloud-loadbalancer-id") for k in
               obj["metadata"].get("annotations", {})):
            lb = obj["metadata"]["annotations"][
                "service.beta.kubernetes.io/alicloud-loadbalancer-id"]
            node.lines.append(f"SLB {lb}")
        services.append(node)
        for wkey in pods:
            if selects_pods(selector, by_key[wkey]):
                selects.append((node.key, wkey))

    # Traffic first: workloads behind a load balancer, then the other SRS servers, then the rest.
    lb = {w for s, w in selects if any(n.key == s and n.badge == "LoadBalancer" for n in services)}
    srs = {n.key for n in workloads if any(SRS_IMAGE.search(line.split("  ")[-1])
                                             for _, lines in n.sections for line in lines[:1])}
    order = {n.key: i for i, n in enumerate(workloads)}
    workloads.sort(key=lambda n: (n.key not in lb, n.key not in srs, order[n.key]))
    # A server listing itself (an origin among its own coworkers) is no link worth drawing.
    connects = [(w, s) for w, s in connects if (s, w) not in selects]
    known = {s.key for s in services}
    for _, target in connects:
        if target not in known:
            services.append(Node(target, f"Service {target.split('/', 1)[1]}",
                                 ["(from another scenario)"], external=True))
            known.add(target)
    return Diagram(name, services, workloads, list(resources.values()), selects, connects, uses)


def srs_configmaps(spec: Obj, annotations: Mapping[str, str]) -> list[str]:
    names = [v["configMap"]["name"] for v in spec.get("volumes", []) if "configMap" in v
             and v["name"] == "config-volume"]
    source = annotations.get("srs-agents/reload-source", "")
    if source.startswith("configmap/"):
        names.append(source.split("/", 1)[1])
    return names


def config_lines(cm: Obj | None) -> list[str]:
    if cm is None:
        return ["(from another scenario)"]
    return ["keys: " + ", ".join(sorted(cm.get("data", {})))]


def claim_lines(claim: Obj | None, by_key: Mapping[str, Obj]) -> list[str]:
    if claim is None:
        return ["(from another scenario)"]
    spec = claim.get("spec", {})
    lines = [f"{','.join(spec.get('accessModes', []))} "
             f"{spec.get('resources', {}).get('requests', {}).get('storage', '')}"]
    for obj in by_key.values():
        if obj["kind"] == "PersistentVolume" and matches(
                spec.get("selector", {}).get("matchLabels", {}),
                obj["metadata"].get("labels", {})):
            nfs = obj["spec"].get("nfs")
            where = f"nfs {nfs['server']}:{nfs['path']}" if nfs else "volume"
            lines.append(f"PV {obj['metadata']['name']}: {where}")
    return lines


def rbac_lines(sa: str, objects: Iterable[Obj]) -> list[str]:
    roles = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Role"}
    lines = []
    for obj in objects:
        if obj["kind"] != "RoleBinding":
            continue
        if any(s.get("kind") == "ServiceAccount" and s.get("name") == sa
               for s in obj.get("subjects", [])):
            role = roles.get(obj["roleRef"]["name"])
            lines.append(f"Role {obj['roleRef']['name']}:")
            lines += ["  " + rule_text(r) for r in (role or {}).get("rules", [])]
    return lines or ["(no Role bound)"]


# ---------------------------------------------------------------------------------------------
# Layout and SVG
# ---------------------------------------------------------------------------------------------

CHAR_W = 7.3      # monospace 12px, with a little room
LINE_H = 16
PAD = 8
GAP_Y = 16
TITLE_H = 20


@dataclass
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def mid_y(self) -> float:
        return self.y + self.h / 2


def text_w(lines: Iterable[str]) -> float:
    return max((len(s) for s in lines), default=0) * CHAR_W


def node_lines(node: Node) -> list[str]:
    out = [node.title + (f"  [{node.badge}]" if node.badge else ""), *node.lines]
    for _, lines in node.sections:
        out += lines
    return out


def node_height(node: Node) -> float:
    h = TITLE_H + PAD + LINE_H * len(node.lines)
    for _, lines in node.sections:
        h += LINE_H * len(lines) + 10
    return h + PAD


def column_width(nodes: Sequence[Node], minimum: float) -> float:
    return max([minimum] + [text_w(node_lines(n)) + 2 * PAD + 12 for n in nodes])


def place(nodes: Sequence[Node], x: float, w: float, wanted: Mapping[str, float],
          top: float) -> dict[str, Box]:
    """Stack boxes top-down, each as near its wanted y as the ones above allow."""
    boxes: dict[str, Box] = {}
    y = top
    order = sorted(range(len(nodes)), key=lambda i: (wanted.get(nodes[i].key, 1e9), i))
    for i in order:
        node = nodes[i]
        y = max(y, wanted.get(node.key, y))
        boxes[node.key] = Box(x, y, w, node_height(node))
        y += node_height(node) + GAP_Y
    return boxes


def svg(name: str, objects: Sequence[Obj]) -> str:
    d = model(name, objects)
    top = 56.0
    col1_w = column_width(d.services, 200)
    col2_w = column_width(d.workloads, 320)
    col3_w = column_width(d.resources, 200)
    lanes = len(d.connects)
    x1 = 30.0
    x2 = x1 + col1_w + 70 + 14 * lanes
    x3 = x2 + col2_w + 80
    wbox = place(d.workloads, x2, col2_w, {}, top)
    wanted_s: dict[str, float] = {}
    for skey, wkey in d.selects + [(s, w) for w, s in d.connects]:
        wanted_s[skey] = min(wanted_s.get(skey, wbox[wkey].y), wbox[wkey].y)
    sbox = place(d.services, x1, col1_w, wanted_s, top)
    wanted_r: dict[str, float] = {}
    for wkey, rkey, _ in d.uses:
        wanted_r[rkey] = min(wanted_r.get(rkey, wbox[wkey].y), wbox[wkey].y)
    rbox = place(d.resources, x3, col3_w, wanted_r, top)
    all_boxes = list(wbox.values()) + list(sbox.values()) + list(rbox.values())
    width = max(x3 + col3_w + 30, x1 + legend_width() + 30)
    bottom = max([b.y + b.h for b in all_boxes] + [top])
    height = bottom + 70

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="DejaVu Sans Mono, Menlo, '
        f'Consolas, monospace" font-size="12">',
        "<defs>",
        '<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="context-stroke"/></marker>',
        "</defs>",
        f'<rect x="0" y="0" width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>',
        f'<text x="{x1:.0f}" y="26" font-size="16" font-weight="bold">'
        f"scenario: {escape(name)}</text>",
        f'<text x="{x1:.0f}" y="44" fill="#555">Services</text>',
        f'<text x="{x2:.0f}" y="44" fill="#555">Workloads (pods and containers)</text>',
        f'<text x="{x3:.0f}" y="44" fill="#555">Configuration, storage, API access</text>',
    ]
    # Edges first, so boxes paint over their ends.
    for skey, wkey in d.selects:
        s, w = sbox[skey], wbox[wkey]
        ys, yw = s.y + TITLE_H / 2 + 4, w.y + TITLE_H / 2 + 4
        xm = s.right + 30
        out.append(path([(s.right, ys), (xm, ys), (xm, yw), (w.x, yw)], "#444", ""))
    for i, (wkey, skey) in enumerate(d.connects):
        s, w = sbox[skey], wbox[wkey]
        lane = s.right + 50 + 14 * i
        yw = w.y + w.h - 12 - 4 * (i % 3)
        ys = s.y + s.h - 10
        out.append(path([(w.x, yw), (lane, yw), (lane, ys), (s.right, ys)], "#1f6feb", "6,4"))
    wlane = {n.key: i for i, n in enumerate(d.workloads)}
    seen: dict[str, int] = {}
    for wkey, rkey, label in d.uses:
        w, r = wbox[wkey], rbox[rkey]
        k = seen[wkey] = seen.get(wkey, -1) + 1
        yw, yr = w.y + TITLE_H + 2 + 5 * k, r.y + TITLE_H / 2 + 4 + 4 * (k % 2)
        xm = w.right + 14 + 9 * (wlane[wkey] % 6)
        color = "#b35900" if label in ("writes", "API", "watch (API)") else "#2e7d32"
        out.append(path([(w.right, yw), (xm, yw), (xm, yr), (r.x, yr)], color, "2,3"))
    for skey, box in sbox.items():
        node = next(n for n in d.services if n.key == skey)
        if node.badge == "LoadBalancer":
            out.append(path([(4, box.y + TITLE_H / 2 + 4), (box.x, box.y + TITLE_H / 2 + 4)],
                            "#444", ""))
    for nodes, boxes, fill in ((d.services, sbox, "#e8f0fe"), (d.workloads, wbox, "#f3f3f3"),
                               (d.resources, rbox, "#fff4e5")):
        for node in nodes:
            out += draw_node(node, boxes[node.key], fill)
    ly = bottom + 30
    out += legend(x1, ly)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def path(points: Sequence[tuple[float, float]], color: str, dash: str) -> str:
    d = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(points))
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    return (f'<path d="{d}" fill="none" stroke="{color}" stroke-width="1.4"{dash_attr} '
            f'marker-end="url(#arrow)"/>')


def draw_node(node: Node, box: Box, fill: str) -> list[str]:
    stroke = "#999" if node.external else "#333"
    dash = ' stroke-dasharray="4,3"' if node.external else ""
    out = [f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" '
           f'rx="6" fill="{fill if not node.external else "#ffffff"}" stroke="{stroke}"{dash}/>']
    tx = box.x + PAD
    y = box.y + TITLE_H - 4
    title = escape(node.title)
    badge = f' <tspan fill="#1f6feb">[{escape(node.badge)}]</tspan>' if node.badge else ""
    out.append(f'<text x="{tx:.1f}" y="{y:.1f}" font-weight="bold">{title}{badge}</text>')
    y += PAD
    for line in node.lines:
        y += LINE_H
        out.append(f'<text x="{tx:.1f}" y="{y - 4:.1f}" fill="#333">{escape(line)}</text>')
    for label, lines in node.sections:
        h = LINE_H * len(lines) + 4
        y += 6
        cfill = "#fffbe6" if label == "init" else "#ffffff"
        out.append(f'<rect x="{tx:.1f}" y="{y:.1f}" width="{box.w - 2 * PAD:.1f}" '
                   f'height="{h:.1f}" rx="3" fill="{cfill}" stroke="#bbb"/>')
        for j, line in enumerate(lines):
            y += LINE_H
            text = escape(line)
            if j == 0:  # "[init ]name  image": the name in bold
                head, _, image = line.rpartition("  ")
                text = f'<tspan font-weight="bold">{escape(head)}</tspan>  {escape(image)}'
            out.append(f'<text x="{tx + 6:.1f}" y="{y - 3:.1f}">{text}</text>')
        y += 4
    return out


LEGEND = [("#444", "", "Service sends to the pods it selects"),
          ("#1f6feb", "6,4", "connects to (SRS cluster link or URL)"),
          ("#2e7d32", "2,3", "mounts"),
          ("#b35900", "2,3", "Kubernetes API: watches or writes")]


def legend_width() -> float:
    return sum(48 + len(text) * CHAR_W + 30 for _, _, text in LEGEND)


def legend(x: float, y: float) -> list[str]:
    items = LEGEND
    out = []
    lx = x
    for color, dash, text in items:
        out.append(path([(lx, y), (lx + 40, y)], color, dash))
        out.append(f'<text x="{lx + 48:.1f}" y="{y + 4:.1f}" fill="#333">{escape(text)}</text>')
        lx += 48 + len(text) * CHAR_W + 30
    return out


# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a picture differs from its render")
    args = parser.parse_args(argv)
    stale = []
    for directory in scenario_dirs():
        name = directory.name
        try:
            picture = svg(name, kustomize(directory))
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 2
        target = IMAGES / f"{name}.svg"
        current = target.read_text() if target.exists() else None
        if current == picture:
            continue
        stale.append(target)
        if not args.check:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(picture)
    for target in stale:
        verb = "out of date" if args.check else "written"
        print(f"{target.relative_to(REPO)}: {verb}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
