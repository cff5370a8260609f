#!/usr/bin/env python3
"""An mplp-context agent in Python: the API contract, proven from a second language.

It creates a context, joins it, holds a KeepAlive stream in a thread, increments a shared counter
with optimistic concurrency (expected_revision; on ABORTED/SYNC_CONFLICT it re-reads and retries),
and watches every revision in another thread, cancelling its stream once on purpose and resuming
from the last revision it saw + 1. Each step prints one line that a person or a test can check;
the last line is "done" and the exit code is 0 only when every check held.

Stubs: generate them with examples/python/generate_stubs.sh OUT_DIR and put OUT_DIR on PYTHONPATH.
Needs python3-grpcio and python3-protobuf (Debian) or grpcio and protobuf (pip).

    python3 examples/python/agent.py --addr 127.0.0.1:50051 --principal py-agent
"""
import argparse
import sys
import threading
import time
import uuid

import grpc
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2, status_pb2
from mplp.context.v1 import context_pb2, event_pb2, participant_pb2, shared_state_pb2
from mplp.context.v1 import context_service_pb2 as cs
from mplp.context.v1 import context_service_pb2_grpc as cs_grpc
from mplp.context.v1 import participant_service_pb2 as ps
from mplp.context.v1 import participant_service_pb2_grpc as ps_grpc

DETAILS_KEY = "grpc-status-details-bin"


def say(text):
    """One line, flushed at once: a test reads the lines as they come."""
    print(text, flush=True)


def error_info(error):
    """The ErrorInfo reason and metadata the server put in grpc-status-details-bin (None, {} if absent)."""
    for key, value in error.trailing_metadata() or ():
        if key != DETAILS_KEY:
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                return info.reason, dict(info.metadata)
    return None, {}


class KeepAlive(threading.Thread):
    """Renews the participant's lease every `interval` seconds over one bidi stream, until stop()."""

    def __init__(self, stub, context_id, participant_id, metadata, interval=1.0):
        super().__init__(daemon=True)
        self.stub, self.context_id, self.participant_id = stub, context_id, participant_id
        self.metadata, self.interval = metadata, interval
        self.stopping = threading.Event()
        self.first = threading.Event()
        self.renewals = 0
        self.error = None
        self.call = None

    def requests(self):
        while not self.stopping.is_set():
            yield ps.KeepAliveRequest(context_id=self.context_id, participant_id=self.participant_id)
            # wait() instead of sleep(): stop() ends the request stream at once.
            self.stopping.wait(self.interval)

    def run(self):
        try:
            self.call = self.stub.KeepAlive(self.requests(), metadata=self.metadata)
            for response in self.call:
                self.renewals += 1
                if not self.first.is_set():
                    status = participant_pb2.ParticipantStatus.Name(response.status)
                    lease = response.lease_expires_at.ToDatetime().isoformat()
                    say(f"keepalive: participant {response.participant_id} is {status}, lease until {lease}Z")
                    self.first.set()
        except grpc.RpcError as error:
            if not self.stopping.is_set():
                self.error = error

    def stop(self):
        self.stopping.set()
        if self.call is not None:
            self.call.cancel()
        self.join(timeout=10)


class Watcher(threading.Thread):
    """Watches every revision from `start`; cancels its stream once after `disconnect_after`
    revisions and resumes from the last one + 1, as a client does after losing its connection."""

    def __init__(self, stub, context_id, metadata, start, disconnect_after):
        super().__init__(daemon=True)
        self.stub, self.context_id, self.metadata = stub, context_id, metadata
        self.next = start
        self.disconnect_after = disconnect_after
        self.revisions = []
        self.reconnects = 0
        self.stopping = threading.Event()
        self.error = None
        self.call = None
        self.cancelled_on_purpose = False

    def run(self):
        delay = 0.1
        while not self.stopping.is_set():
            request = cs.WatchContextRequest(context_id=self.context_id, start_revision=self.next)
            self.call = self.stub.WatchContext(request, metadata=self.metadata)
            try:
                for response in self.call:
                    delay = 0.1
                    if not response.HasField("events"):
                        continue
                    revision = response.events.revision
                    names = ", ".join(event_pb2.ContextEventType.Name(e.type).removeprefix("CONTEXT_EVENT_TYPE_") for e in response.events.events)
                    say(f"watch: revision {revision}: {names}")
                    self.revisions.append(revision)
                    self.next = revision + 1
                    if self.reconnects == 0 and len(self.revisions) == self.disconnect_after:
                        say(f"watch: cancelling the stream after revision {revision} to test resuming")
                        self.cancelled_on_purpose = True
                        self.call.cancel()
                return  # the stream ended OK: the context was deleted
            except grpc.RpcError as error:
                if self.stopping.is_set():
                    return
                code = error.code()
                if code == grpc.StatusCode.CANCELLED and self.cancelled_on_purpose:
                    self.cancelled_on_purpose = False
                elif code == grpc.StatusCode.UNAVAILABLE:
                    say(f"watch: disconnected ({code.name}); retrying in {delay:.1f} s")
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
                else:
                    self.error = error
                    return
                self.reconnects += 1
                say(f"watch: resuming from revision {self.next}")

    def stop(self):
        self.stopping.set()
        if self.call is not None:
            self.call.cancel()
        self.join(timeout=10)


def number(value):
    return struct_pb2.Value(number_value=value)


def increment(stub, context_id, metadata, make_conflict):
    """counter += 1 with expected_revision; on SYNC_CONFLICT read again and retry (bounded)."""
    for attempt in range(1, 11):
        current = stub.GetSharedState(cs.GetSharedStateRequest(context_id=context_id), metadata=metadata)
        fields = current.shared_state.variables.fields
        counter = int(fields["counter"].number_value) if "counter" in fields else 0
        if make_conflict and attempt == 1:
            # Another writer commits between our read and our write: our expected_revision is now stale.
            rival = stub.UpdateSharedState(
                cs.UpdateSharedStateRequest(
                    context_id=context_id,
                    changes=[shared_state_pb2.StateChange(operation=shared_state_pb2.STATE_OPERATION_SET, path="rival.note", value=struct_pb2.Value(string_value="was here"))],
                ),
                metadata=metadata,
            )
            say(f"rival: wrote rival.note at revision {rival.revision}")
        change = shared_state_pb2.StateChange(operation=shared_state_pb2.STATE_OPERATION_SET, path="counter", value=number(counter + 1))
        request = cs.UpdateSharedStateRequest(context_id=context_id, changes=[change], expected_revision=current.revision, request_id=str(uuid.uuid4()))
        try:
            response = stub.UpdateSharedState(request, metadata=metadata)
            say(f"update: counter={counter + 1} at revision {response.revision} (expected_revision {current.revision})")
            return response.revision
        except grpc.RpcError as error:
            reason, details = error_info(error)
            if error.code() != grpc.StatusCode.ABORTED or reason != "SYNC_CONFLICT":
                raise
            say(f"conflict: {error.code().name} {reason} current_revision={details.get('current_revision')}; re-reading and retrying")
            time.sleep(0.05 * attempt)
    raise RuntimeError("gave up after 10 conflicts")


def wait_for(what, condition, timeout=20.0):
    """Polls `condition` until it holds; fails after the bound (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", default="127.0.0.1:50051")
    parser.add_argument("--principal", default="py-agent", help="x-principal-id (servers without auth)")
    parser.add_argument("--token", help="a JWT, sent as authorization: Bearer <token>")
    parser.add_argument("--updates", type=int, default=5)
    args = parser.parse_args()

    metadata = [("x-principal-id", args.principal)]
    if args.token:
        metadata.append(("authorization", f"Bearer {args.token}"))
    channel = grpc.insecure_channel(args.addr)
    contexts = cs_grpc.ContextServiceStub(channel)
    participants = ps_grpc.ParticipantServiceStub(channel)

    created = contexts.CreateContext(
        cs.CreateContextRequest(
            context=context_pb2.Context(name=f"python-agent-{uuid.uuid4().hex[:8]}", type=context_pb2.CONTEXT_TYPE_COLLABORATIVE),
            request_id=str(uuid.uuid4()),
        ),
        metadata=metadata,
    ).context
    context_id = created.context_id
    say(f"created context {context_id} at revision {created.revision}")

    # Watch from the first revision, so the watcher's record can be checked against everything that happened.
    watcher = Watcher(contexts, context_id, metadata, start=1, disconnect_after=3)
    watcher.start()

    joined = participants.AddParticipant(
        ps.AddParticipantRequest(
            context_id=context_id,
            participant=participant_pb2.Participant(agent_id=args.principal, participant_type=participant_pb2.PARTICIPANT_TYPE_AGENT, display_name="python agent"),
            request_id=str(uuid.uuid4()),
        ),
        metadata=metadata,
    ).participant
    say(f"joined context as participant {joined.participant_id} with roles {','.join(joined.roles)}")

    keepalive = KeepAlive(participants, context_id, joined.participant_id, metadata)
    keepalive.start()
    wait_for("the first KeepAlive answer", lambda: keepalive.first.is_set() or keepalive.error is not None)
    if keepalive.error is not None:
        raise keepalive.error

    last = 0
    for n in range(args.updates):
        last = increment(contexts, context_id, metadata, make_conflict=(n == 1))

    wait_for(f"the watcher to reach revision {last}", lambda: (watcher.revisions and watcher.revisions[-1] >= last) or watcher.error is not None)
    if watcher.error is not None:
        raise watcher.error
    expected = list(range(1, last + 1))
    if watcher.revisions != expected:
        say(f"watch: FAILED: saw {watcher.revisions}, expected {expected}")
        return 1
    say(f"watch: saw revisions 1..{last} in order, no gap, no repeat, across {watcher.reconnects} reconnect(s)")

    final = contexts.GetSharedState(cs.GetSharedStateRequest(context_id=context_id), metadata=metadata)
    counter = int(final.shared_state.variables.fields["counter"].number_value)
    say(f"state: counter={counter} at revision {final.revision}")
    if counter != args.updates:
        say(f"state: FAILED: counter is {counter}, expected {args.updates}")
        return 1

    watcher.stop()
    keepalive.stop()
    if keepalive.error is not None:
        raise keepalive.error
    say(f"keepalive: renewed {keepalive.renewals} time(s), stopped")
    participants.RemoveParticipant(ps.RemoveParticipantRequest(context_id=context_id, participant_id=joined.participant_id, reason="done"), metadata=metadata)
    say("left context")
    channel.close()
    say("done")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except grpc.RpcError as error:
        reason, details = error_info(error)
        say(f"error: {error.code().name} {reason or ''}: {error.details()} {details}")
        sys.exit(1)
