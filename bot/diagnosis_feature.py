"""Error reports in the chat, `/diagnose` (a short decision tree of buttons), and the wrong-kind check.

An error report typed or pasted as a question is answered with its diagnosis (cause, numbered steps)
and the buttons that act on it; `Helpdesk.decide` consults the same reading first, so `ask --json`
gives the report's KB entry. The tree lives in knowledge/diagnosis/tree.yaml; the chat's place in it
is kept in the `conversations` table, so a restart resumes where the user was.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from bot.yamlfile import load_yaml

from bot.diagnosis import (
    MIN_CONFIDENCE,
    Diagnosis,
    DiagnosisTable,
    Systems,
    WrongKind,
    load_systems,
    load_table,
)
from bot.features import Feature, Replies
from bot.flows import FlowState
from bot.knowledge import KbProblem, KnowledgeError
from bot.matcher import Candidate, Decision
from bot.types import Button, Inbound, Reply

TREE_FILE = Path("diagnosis") / "tree.yaml"
FLOW = "diagnose"
MAX_TEXT = 4000
_NODE_ID = re.compile(r"^[a-z][a-z0-9_-]{0,19}$")
_CONTACT = re.compile(r"\{\{\s*contact\s*\}\}")


# -- the tree ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Leaf:
    """Where a path of the tree ends: a code row, a message row or a KB entry (with its buttons)."""

    code: int | None = None
    message: str | None = None
    kb: str | None = None
    actions: tuple[str, ...] = ()
    system: str | None = None


@dataclass(frozen=True)
class Option:
    label: str
    next: str | None = None
    leaf: Leaf | None = None


@dataclass(frozen=True)
class Node:
    id: str
    prompt: str
    options: tuple[Option, ...]


@dataclass(frozen=True)
class Tree:
    start: str
    nodes: dict[str, Node]


def load_tree(knowledge_dir: str | Path, table: DiagnosisTable, kb_ids: set[str], action_names: set[str],
              systems: Systems) -> tuple[Tree, list[KbProblem]]:
    """Load tree.yaml; problems name the file, the node and the option."""
    path = Path(knowledge_dir) / TREE_FILE
    where = str(path)
    try:
        data = load_yaml(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return Tree("", {}), [KbProblem(where, f"cannot load: {exc}".replace("\n", " "))]
    problems: list[KbProblem] = []
    raw_nodes = data.get("nodes") if isinstance(data, dict) else None
    if not isinstance(raw_nodes, dict) or not raw_nodes:
        return Tree("", {}), [KbProblem(where, "expected 'start' and a 'nodes' mapping")]
    nodes: dict[str, Node] = {}
    for node_id, raw in raw_nodes.items():
        at = f"{where}: node '{node_id}'"
        if not _NODE_ID.match(str(node_id)):
            problems.append(KbProblem(at, "node ids are short lowercase ASCII (they travel in button data)"))
            continue
        if not isinstance(raw, dict) or not str(raw.get("prompt", "")).strip() or not isinstance(raw.get("options"), list) \
                or not raw["options"]:
            problems.append(KbProblem(at, "needs a 'prompt' and a non-empty 'options' list"))
            continue
        options: list[Option] = []
        for index, item in enumerate(raw["options"], start=1):
            spot = f"{at} option {index}"
            if not isinstance(item, dict) or not str(item.get("label", "")).strip():
                problems.append(KbProblem(spot, "needs a 'label'"))
                continue
            targets = [k for k in ("next", "code", "message", "kb") if item.get(k) is not None]
            if len(targets) != 1:
                problems.append(KbProblem(spot, "needs exactly one of 'next', 'code', 'message' or 'kb'"))
                continue
            label = str(item["label"]).strip()
            if "next" in targets:
                options.append(Option(label, next=str(item["next"])))
                continue
            actions = tuple(str(a) for a in (item.get("actions") or []))
            for action in actions:
                if action not in action_names:
                    problems.append(KbProblem(spot, f"unknown action '{action}' (see knowledge/actions.yaml)"))
            system = item.get("system")
            if system is not None and str(system) not in systems.systems:
                problems.append(KbProblem(spot, f"system '{system}' is not in knowledge/diagnosis/systems.yaml"))
            leaf = Leaf(actions=actions, system=str(system) if system is not None else None)
            if "code" in targets:
                if not isinstance(item["code"], int):
                    problems.append(KbProblem(spot, f"code {item['code']!r} must be a number"))
                    continue
                if table.rows and table.row_for(item["code"]) is None:  # (no rows: codes.yaml's own problem)
                    problems.append(KbProblem(spot, f"code {item['code']!r} is not in knowledge/diagnosis/codes.yaml"))
                    continue
                leaf = Leaf(code=int(item["code"]), actions=actions, system=leaf.system)
            elif "message" in targets:
                if table.rows and str(item["message"]) not in table.by_message:
                    problems.append(KbProblem(spot, f"message '{item['message']}' is not in codes.yaml messages"))
                    continue
                leaf = Leaf(message=str(item["message"]), actions=actions, system=leaf.system)
            else:
                if str(item["kb"]) not in kb_ids:
                    problems.append(KbProblem(spot, f"kb '{item['kb']}' is not a knowledge-base entry"))
                    continue
                leaf = Leaf(kb=str(item["kb"]), actions=actions, system=leaf.system)
            options.append(Option(label, leaf=leaf))
        nodes[str(node_id)] = Node(str(node_id), str(raw["prompt"]).strip(), tuple(options))
    for node in nodes.values():
        for index, option in enumerate(node.options, start=1):
            if option.next is not None and option.next not in nodes:
                problems.append(KbProblem(f"{where}: node '{node.id}' option {index}",
                                          f"next node '{option.next}' does not exist"))
    start = str(data.get("start", ""))
    if start not in nodes:
        problems.append(KbProblem(where, f"'start' must name a node, not {start!r}"))
    return Tree(start, nodes), problems


def load_diagnosis(knowledge_dir: str | Path, kb) -> tuple[DiagnosisTable, Systems, Tree, list[KbProblem]]:
    """codes.yaml, systems.yaml and tree.yaml, checked against the knowledge base `kb`."""
    kb_ids, action_names = set(kb.entries), set(kb.action_labels)
    table, problems = load_table(knowledge_dir, kb_ids, action_names)
    systems = load_systems(knowledge_dir)
    tree, tree_problems = load_tree(knowledge_dir, table, kb_ids, action_names, systems)
    return table, systems, tree, [*problems, *systems.problems, *tree_problems]


def check_diagnosis(knowledge_dir: str | Path, kb) -> list[KbProblem]:
    """Every problem of knowledge/diagnosis/ (for `helpdesk kb check`); empty when all is well."""
    return load_diagnosis(knowledge_dir, kb)[3]


# -- the feature --------------------------------------------------------------------------------------
class DiagnosisFeature(Feature):
    """Error reports -> diagnosis; /diagnose -> the guided tree; act:diagnose on answers and fallbacks."""

    name = "diagnosis"
    commands = ("diagnose",)
    actions = ("diagnose",)
    prefixes = ("dg",)
    flows = (FLOW,)

    def __init__(self, hd) -> None:
        super().__init__(hd)
        self.table, self.systems, self.tree, problems = load_diagnosis(hd.config.knowledge_dir, hd.kb)
        if problems:
            raise KnowledgeError(problems)
        hd.deciders.append(self.decide)

    # -- reading reports ------------------------------------------------------------------------------
    def diagnose(self, text: str) -> Diagnosis:
        """The diagnosis of a text, with `{{ contact }}` filled in (what `helpdesk diagnose` prints)."""
        return self.table.diagnose(text[:MAX_TEXT]).rendered(self.fill)

    def fill(self, text: str) -> str:
        return _CONTACT.sub(self.hd.config.contact_text, text)

    def _fires(self, d: Diagnosis) -> bool:
        if d.is_unknown_code:
            return True
        return d.recognized and d.confidence >= MIN_CONFIDENCE and d.kb_id in self.hd.kb.entries

    def decide(self, text: str) -> Decision | None:
        """The `Helpdesk.decide` hook: an error report answers its KB entry; an unknown code falls back.
        The table is the one authority on codes: the matcher itself never routes by number."""
        d = self.table.diagnose(text)
        if self._fires(d):
            return self._decision(text, d)
        return None

    def _decision(self, text: str, d: Diagnosis) -> Decision:
        ranked = self.hd.matcher.rank(text)
        if d.is_unknown_code:
            best = ranked[0].score if ranked else 0.0
            return Decision(text, "fallback", None, best, tuple(ranked), via_code=d.code)
        score = round(100.0 * d.confidence, 2)
        others = tuple(c for c in ranked if c.id != d.kb_id)[:2]
        return Decision(text, "answer", d.kb_id, score, (Candidate(d.kb_id, score), *others), via_code=d.code)

    # -- hooks ----------------------------------------------------------------------------------------
    def intercept_text(self, inbound: Inbound) -> Replies:
        if self.hd.is_staff_chat(inbound):
            return None
        text = inbound.text.strip()
        d = self.table.diagnose(text[:MAX_TEXT])
        if not self._fires(d):
            return None
        return self._answer_report(inbound, text, d)

    def on_command(self, inbound: Inbound, name: str, args: str) -> Replies:
        if name != "diagnose":
            return None
        if args:
            d = self.table.diagnose(args[:MAX_TEXT])
            if self._fires(d):
                self.hd.flows.clear(inbound.chat_id, FLOW)
                return self._answer_report(inbound, args, d)
        return self.start(inbound)

    def on_action(self, inbound: Inbound, data: str) -> Replies:
        if data == "act:diagnose" or data == "dg:s":
            return self.start(inbound)
        parts = data.split(":")
        if parts[:2] == ["dg", "o"] and len(parts) == 4 and parts[3].isdigit():
            return self._choose(inbound, parts[2], int(parts[3]))
        if data == "dg:b":
            return self._back(inbound)
        if parts[:2] == ["dg", "wk"] and len(parts) == 3 and parts[2] in self.systems.systems:
            lines, buttons = self.wrong_kind_lines(inbound.chat_id, parts[2])
            text = "\n\n".join(lines)
            rows = [*(tuple(buttons[i:i + 2]) for i in range(0, len(buttons), 2)), (self.hd.home_button(),)]
            return [Reply(text, tuple(rows), tags=("diagnosis:wrong-kind",))]
        return None

    def on_flow_text(self, inbound: Inbound, state: FlowState) -> Replies:
        text = inbound.text.strip()
        d = self.table.diagnose(text[:MAX_TEXT])
        if self._fires(d):  # a pasted error leaves the tree: it says more than the buttons could
            self.hd.flows.clear(inbound.chat_id, FLOW)
            return self._answer_report(inbound, text, d)
        node = self.tree.nodes.get(state.step) or self.tree.nodes[self.tree.start]
        return [Reply(self.hd.msg("diagnosis.tree.use_buttons")), self._node_reply(node, state.data)]

    def on_cancel(self, inbound: Inbound, state: FlowState) -> Replies:
        return [Reply(self.hd.msg("diagnosis.tree.cancelled"), ((self.hd.home_button(),),))]

    # -- error reports ------------------------------------------------------------------------------
    def _answer_report(self, inbound: Inbound, text: str, d: Diagnosis) -> list[Reply]:
        decision = self._decision(text, d)
        self.hd.log_question(inbound, decision)
        self.hd.miss_streak(inbound.chat_id, missed=d.is_unknown_code)
        return [self.report_reply(inbound.chat_id, d)]

    def report_reply(self, chat_id: str, d: Diagnosis, system_id: str | None = None,
                     extra_rows: tuple[tuple[Button, ...], ...] = ()) -> Reply:
        """The diagnosis as the user sees it: cause, numbered steps, then the buttons that act on it."""
        hd = self.hd
        if d.is_unknown_code:
            first = hd.msg("diagnosis.unknown_code", code=d.code) if d.code else hd.msg("diagnosis.unknown_name",
                                                                                      name=d.name)
            text = first + "\n\n" + hd.msg("diagnosis.unknown_tip")
            rows = [(hd.action_button("staff"),), (Button(hd.kb.action_labels.get("diagnose", "diagnose"), "dg:s"),),
                    *extra_rows, (hd.home_button(),)]
            return Reply(text, tuple(rows), tags=("diagnosis:unknown-code", "fallback"))
        filled = d.rendered(self.fill)
        extra: list[str] = []
        system_buttons: list[Button] = []
        if d.check == "wrong-kind":
            extra, system_buttons = self.wrong_kind_lines(chat_id, system_id)
        text = hd.text("diagnosis/result.j2", d=filled, extra=extra, staff_note=hd.msg("diagnosis.staff_needed"))
        actions = [a for a in d.actions if hd.has_action(a) or a == "staff"]
        if d.needs_staff and "staff" in actions:
            actions = ["staff", *(a for a in actions if a != "staff")]
        buttons = [hd.action_button(a) for a in actions]
        rows: list[tuple[Button, ...]] = [tuple(buttons[i:i + 2]) for i in range(0, len(buttons), 2)]
        entry = hd.kb.get(d.kb_id) if d.kb_id else None
        if entry is not None:
            rows.append((Button(entry.title, f"kb:{entry.id}"),))
        rows.extend(tuple(system_buttons[i:i + 2]) for i in range(0, len(system_buttons), 2))
        rows.extend(extra_rows)
        if entry is not None:  # the same feedback the FAQ collects, on the entry the diagnosis points to
            rows.append((Button("👍", f"fb:{entry.id}:u"), Button("👎", f"fb:{entry.id}:d"), hd.home_button()))
        else:
            rows.append((hd.home_button(),))
        tags = [f"diagnosis:{d.row}"]
        if d.kb_id:
            tags.append(f"answer:{d.kb_id}")
        return Reply(text, tuple(rows), tags=tuple(tags))


    # -- wrong kind -----------------------------------------------------------------------------------
    def wrong_kind_lines(self, chat_id: str, system_id: str | None = None) -> tuple[list[str], list[Button]]:
        """What the linked holder holds vs what `system_id` needs (rendered lines), and buttons for other systems."""
        hd = self.hd
        systems = self.systems
        system_id = system_id if system_id in systems.systems else systems.default
        system = systems.systems[system_id]
        registry = _registry(hd)
        holder = registry.holder_by_chat(chat_id) if registry is not None else None
        others = [Button(s.name, f"dg:wk:{s.id}") for s in systems.systems.values() if s.id != system_id]
        if holder is None:  # what the system needs and what to apply for; linking would say what they hold
            rule = system.accept[0]
            lines = [hd.msg("diagnosis.wrongkind.needs", system=system.name, needed=systems.usage_label(rule.usages[0]),
                            kind=systems.kinds.get(rule.kinds[0], rule.kinds[0]))]
            apply_text = str(systems.usages.get(rule.usages[0], {}).get("apply", ""))
            if apply_text:
                lines.append(hd.msg("diagnosis.wrongkind.apply", apply=self.fill(apply_text)))
            lines += [hd.msg("diagnosis.wrongkind.not_linked"), hd.msg("diagnosis.wrongkind.other_system")]
            return lines, ([hd.action_button("link")] if hd.has_action("link") else []) + others
        now = hd.now()
        certs = registry.certificates(holder.employee_id, now)
        if not certs:
            return [hd.msg("diagnosis.wrongkind.no_certificates")], []
        usable = [c for c in certs if c.effective_status(now) == "valid"] or certs
        lines: list[str] = []
        needed_usage = system.accept[0].usages[0]
        fits = [c for c in usable if systems.compare(c.usage, c.kind, c.scheme, system_id, c.policy_oid) is None]
        if fits:
            best = sorted(fits, key=lambda c: (c.kind != "sig", -c.not_after.timestamp()))[0]
            lines.append(hd.msg("diagnosis.wrongkind.fits", system=system.name,
                                needed=systems.usage_label(needed_usage), serial=best.serial))
        else:
            problems = [systems.compare(c.usage, c.kind, c.scheme, system_id, c.policy_oid) for c in usable]
            ordered = sorted((p for p in problems if p is not None), key=_wrong_kind_rank)
            lines.extend(self.wrong_kind_text(ordered[0]))
        lines.append(hd.msg("diagnosis.wrongkind.other_system"))
        return lines, others

    def wrong_kind_text(self, wrong: WrongKind) -> list[str]:
        """The sentences for one WrongKind (what is wrong, then what to apply for)."""
        hd = self.hd
        if wrong.problem == "unknown":
            return [hd.msg("diagnosis.wrongkind.unknown")]
        lines = [hd.msg(f"diagnosis.wrongkind.{wrong.problem}", held=wrong.held, needed=wrong.needed,
                        system=wrong.system_name)]
        if wrong.apply and wrong.problem in ("usage", "scheme"):
            lines.append(hd.msg("diagnosis.wrongkind.apply", apply=self.fill(wrong.apply)))
        return lines

    # -- the guided tree ------------------------------------------------------------------------------
    def start(self, inbound: Inbound) -> list[Reply]:
        node = self.tree.nodes[self.tree.start]
        self.hd.flows.set(inbound.chat_id, FLOW, node.id, {"path": [], "trail": []})
        return [self._node_reply(node, {}, tip=self.hd.msg("diagnosis.paste_tip"))]

    def _node_reply(self, node: Node, data: dict[str, Any], tip: str = "") -> Reply:
        trail = list(data.get("trail") or [])
        text = self.hd.text("diagnosis/node.j2", prompt=node.prompt, trail=trail)
        if tip:
            text = tip + "\n\n" + text
        rows: list[tuple[Button, ...]] = [(Button(o.label, f"dg:o:{node.id}:{i}"),) for i, o in enumerate(node.options)]
        last = [self.hd.home_button()]
        if data.get("path"):
            last.insert(0, Button(self.hd.msg("diagnosis.tree.back"), "dg:b"))
        rows.append(tuple(last))
        return Reply(text, tuple(rows), tags=(f"diagnose:{node.id}",))

    def _choose(self, inbound: Inbound, node_id: str, index: int) -> Replies:
        node = self.tree.nodes.get(node_id)
        if node is None or not 0 <= index < len(node.options):
            return None
        option = node.options[index]
        state = self.hd.flows.get(inbound.chat_id)
        data = state.data if state is not None and state.flow == FLOW else {}
        path, trail = list(data.get("path") or []), list(data.get("trail") or [])
        if state is not None and state.flow == FLOW and state.step != node_id and node_id in path:
            cut = path.index(node_id)  # an older button of this walk: continue from there
            path, trail = path[:cut], trail[:cut]
        if option.next is not None:
            new = {"path": [*path, node_id], "trail": [*trail, option.label]}
            self.hd.flows.set(inbound.chat_id, FLOW, option.next, new)
            return [self._node_reply(self.tree.nodes[option.next], new)]
        self.hd.flows.clear(inbound.chat_id, FLOW)
        return [self._leaf_reply(inbound, option.leaf)]

    def _back(self, inbound: Inbound) -> Replies:
        state = self.hd.flows.get(inbound.chat_id)
        if state is None or state.flow != FLOW or not state.data.get("path"):
            return self.start(inbound)
        path, trail = list(state.data["path"]), list(state.data.get("trail") or [])
        previous = path.pop()
        trail = trail[:len(path)]
        data = {"path": path, "trail": trail}
        self.hd.flows.set(inbound.chat_id, FLOW, previous, data)
        return [self._node_reply(self.tree.nodes[previous], data)]

    def _leaf_reply(self, inbound: Inbound, leaf: Leaf) -> Reply:
        hd = self.hd
        restart = ((Button(hd.msg("diagnosis.tree.restart"), "dg:s"),),)
        if leaf.kb is not None:
            entry = hd.kb.entries[leaf.kb]
            answer = hd.renderer.from_source(f"kb:{entry.id}", entry.answer)
            text = hd.text("diagnosis/kb_leaf.j2", title=entry.title, answer=answer)
            buttons = [hd.action_button(a) for a in leaf.actions if hd.has_action(a) or a == "staff"]
            rows = [tuple(buttons[i:i + 2]) for i in range(0, len(buttons), 2)]
            rows.extend(restart)
            rows.append((hd.home_button(),))
            return Reply(text, tuple(rows), tags=(f"diagnosis:kb:{entry.id}", f"answer:{entry.id}"))
        if leaf.code is not None:
            d = self.table.of_code(leaf.code, confidence=1.0, matched="tree")
        else:
            d = self.table.of_message(leaf.message or "", confidence=1.0)
        assert d is not None  # load_tree checked the leaf
        if leaf.actions:
            d = replace(d, actions=leaf.actions)
        return self.report_reply(inbound.chat_id, d, system_id=leaf.system, extra_rows=restart)


def _wrong_kind_rank(wrong: WrongKind) -> tuple[int, int]:
    """Which mismatch to explain first: a personal certificate of the wrong usage or scheme, then the rest."""
    personal = wrong.held_usage in ("personal-admin", "personal-public", "epki-personal", "npki")
    order = {"usage": 0, "scheme": 1, "kind": 2, "unknown": 3}
    return (0 if personal else 1, order.get(wrong.problem, 4))


def _registry(hd):
    """The registry over hd's store (None when this build has none)."""
    try:
        from bot.registry import Registry
    except ImportError:
        return None
    return Registry(hd)
