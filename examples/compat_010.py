"""A routilux 0.10 program, unchanged: support tickets are cleaned, routed and handled.

Written exactly as for routilux 0.10: routines with a ``trigger`` entry slot and
``*_slot``/``*_event`` attributes, the built-in DataTransformer and
ConditionalRouter configured the 0.10 way, ``JobState.wait_for_completion``,
results read from routine attributes, errors found by filtering the execution
history, retries counted by the ErrorHandler, and the flow serialized.

    python examples/compat_010.py
    routilux run examples/compat_010.py:build_flow     (one job of the sample tickets)
"""

import json
import sys

from routilux import ErrorHandler, ErrorStrategy, Flow, Routine
from routilux.builtin_routines import ConditionalRouter, DataTransformer
from routilux.job_state import JobState

TICKETS = [
    {"id": 1, "priority": "HIGH", "topic": "outage", "owner": "ana"},
    {"id": 2, "priority": "low", "topic": "billing", "owner": "bo", "note": None},
    {"id": 3, "priority": "Low", "topic": "feature", "age_days": 9, "owner": "cy"},
    {"id": 4, "priority": "normal", "topic": "question"},
]


class TicketSource(Routine):
    """Emits each ticket of the job's ``tickets`` list (the sample ones by default)."""

    def __init__(self):
        super().__init__()
        self.trigger_slot = self.define_slot("trigger", handler=self._handle_trigger)
        self.output_event = self.define_event("output", ["data"])

    def _handle_trigger(self, tickets=None, **kwargs):
        for ticket in TICKETS if tickets is None else tickets:
            self.emit("output", data=ticket)


class Desk(Routine):
    """A support desk: keeps the tickets routed to it."""

    def __init__(self):
        super().__init__()
        self.tickets = []
        self.input_slot = self.define_slot("input", handler=self._handle_input)

    def _handle_input(self, data=None, **kwargs):
        ticket = self._extract_input_data(data, **kwargs)
        self.tickets.append(ticket["id"])
        self.send_output("ticket", id=ticket["id"])


class Auditor(Routine):
    """Checks every cleaned ticket; a ticket without an owner is an error."""

    def __init__(self):
        super().__init__()
        self.checked = 0
        self.input_slot = self.define_slot("input", handler=self._handle_input)

    def _handle_input(self, transformed_data=None, **kwargs):
        if "owner" not in transformed_data:
            raise ValueError(f"ticket {transformed_data['id']} has no owner")
        self.checked += 1


class Notifier(Routine):
    """Pages someone for urgent tickets; the pager fails on its first call."""

    def __init__(self):
        super().__init__()
        self.calls = 0
        self.paged = []
        self.input_slot = self.define_slot("input", handler=self._handle_input)

    def _handle_input(self, data=None, route=None, **kwargs):
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("pager service unavailable")
        self.paged.append(data["id"])


def normalize_priority(ticket):
    return dict(ticket, priority=str(ticket.get("priority", "")).lower())


def build_flow():
    """The support desk flow (also for `routilux run examples/compat_010.py:build_flow`)."""
    flow = Flow(flow_id="support_tickets")

    source = TicketSource()
    cleaner = DataTransformer()
    cleaner.register_transformation("normalize_priority", normalize_priority)
    cleaner.set_config(transformations=["remove_none", "normalize_priority"])

    router = ConditionalRouter()
    router.set_config(threshold=3)
    router.add_route("urgent", "data.get('priority') == 'high'")
    router.add_route("billing", lambda data: data.get("topic") == "billing")
    router.add_route("backlog", "data.get('age_days', 0) > config.get('threshold', 0)")

    urgent_desk, billing_desk, backlog_desk, general_desk = Desk(), Desk(), Desk(), Desk()
    auditor = Auditor()
    auditor.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    notifier = Notifier()
    pager_handler = ErrorHandler(ErrorStrategy.RETRY, max_retries=2, retry_delay=0.01)
    notifier.set_error_handler(pager_handler)

    flow.add_routine(source, "source")
    flow.add_routine(cleaner, "cleaner")
    flow.add_routine(router, "router")
    flow.add_routine(urgent_desk, "urgent_desk")
    flow.add_routine(billing_desk, "billing_desk")
    flow.add_routine(backlog_desk, "backlog_desk")
    flow.add_routine(general_desk, "general_desk")
    flow.add_routine(auditor, "auditor")
    flow.add_routine(notifier, "notifier")

    flow.connect("source", "output", "cleaner", "input")
    flow.connect("cleaner", "output", "router", "input", param_mapping={"transformed_data": "data"})
    flow.connect("cleaner", "output", "auditor", "input")
    flow.connect("router", "urgent", "urgent_desk", "input")
    flow.connect("router", "urgent", "notifier", "input")
    flow.connect("router", "billing", "billing_desk", "input")
    flow.connect("router", "backlog", "backlog_desk", "input")
    flow.connect("router", "output", "general_desk", "input")  # route="unmatched"
    return flow


def main():
    flow = build_flow()
    urgent_desk, billing_desk, backlog_desk, general_desk = (
        flow.routines[name]
        for name in ("urgent_desk", "billing_desk", "backlog_desk", "general_desk")
    )
    auditor, notifier = flow.routines["auditor"], flow.routines["notifier"]
    pager_handler = notifier.get_error_handler()

    job_state = flow.execute("source", entry_params={"tickets": TICKETS})
    JobState.wait_for_completion(flow, job_state, timeout=30)

    print(f"job status: {job_state.status}")
    print(f"urgent: {urgent_desk.tickets} billing: {billing_desk.tickets} "
          f"backlog: {backlog_desk.tickets} general: {general_desk.tickets}")
    print(f"paged: {notifier.paged} after {pager_handler.retry_count} retry")
    print(f"audited: {auditor.checked}")

    errors = [
        record
        for record in job_state.execution_history
        if record.event_name in ("error", "error_continued")
    ]
    for record in errors:
        print(f"{record.event_name} in {record.routine_id}: {record.data['error']}")
    auditor_state = job_state.get_routine_state("auditor")
    print(f"auditor status: {auditor_state['status']}")

    performance = flow.execution_tracker.get_flow_performance()
    print(f"routines: {performance['total_routines']} events: {performance['total_events']}")

    saved = json.dumps(flow.serialize())
    copy = Flow()
    copy.deserialize(json.loads(saved))
    print(f"serialized routines: {sorted(copy.routines)}")
    flow.shutdown(wait=True)
    copy.shutdown(wait=True)

    ok = (
        job_state.status == "completed"
        and urgent_desk.tickets == [1]
        and billing_desk.tickets == [2]
        and backlog_desk.tickets == [3]
        and general_desk.tickets == [4]
        and notifier.paged == [1]
        and pager_handler.retry_count == 1
        and auditor.checked == 3
        and [r.event_name for r in errors] == ["error_continued"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
