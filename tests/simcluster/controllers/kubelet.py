"""The kubelet of every simulated node: runs bound pods through the runtime and reports their status.

One controller plays the kubelet of all nodes. For a pod bound to a node whose Ready condition is True:

* the sandbox is ready `settings.runtime.containerStartSeconds` (simulated) after the pod is first seen:
  PodReadyToStartContainers=True, podIP from the node's pod CIDR, hostIP from the node's InternalIP;
* init containers run to completion one after the other (sidecars, `restartPolicy: Always` init
  containers, keep running), then all containers start. What each container does (run forever, exit
  with a code after some time, print what) is the runtime's decision (`runtime.start_container`);
* an image matching a pattern of `settings.runtime.unpullableImages` (fnmatch, e.g. "*:does-not-exist")
  never pulls: the container waits with ErrImagePull, then ImagePullBackOff, retried with the same
  back-off as a crash loop, and the events say what kubelet says (Failed, BackOff);
* exits are handled per `restartPolicy` with the real back-off (immediate first restart, then 10 s
  doubling to 5 min; waiting reason CrashLoopBackOff); the phase follows kubelet's getPhase();
* readiness: a running container is ready when the runtime says its program is ready and any
  readinessProbe's initialDelaySeconds has passed (probes are not executed);
* a pod with a deletionTimestamp has its containers stopped (programs that ignore SIGTERM, shell
  scripts running as PID 1, are killed when the grace period ends) and is then deleted with grace 0;
* pods bound to a node that no longer exists are deleted after 40 s (PodGC).

Pods that are already Running with container statuses when first seen (a scenario or benchmark that
loads them directly) are adopted without any write. Node status is left as the scenario wrote it.
"""
from __future__ import annotations

import copy
import fnmatch
import hashlib
import ipaddress
import math

from ..errors import ApiError
from . import podutil
from .manager import NODES, PODS, Controller

COMPONENT = "kubelet"
BACKOFF_START = 10.0
BACKOFF_MAX = 300.0
PODGC_QUARANTINE = 40.0
POD_CIDR_BASE = ipaddress.ip_network("10.128.0.0/9")
MIN_POLL = 1.0
MAX_POLL = 30.0


class _Container(object):
    """Kubelet's memory of one container of one pod."""

    __slots__ = ("name", "spec", "init", "sidecar", "run", "restarts", "last", "backoff", "next_start",
                 "done", "waiting", "polls")

    def __init__(self, spec, init=False):
        self.name = spec["name"]
        self.spec = spec
        self.init = init
        self.sidecar = init and spec.get("restartPolicy") == "Always"
        self.run = None            # current ContainerRun
        self.restarts = 0
        self.last = None           # lastState.terminated dict
        self.backoff = 0.0         # current back-off period
        self.next_start = None     # sim time of the next (re)start, None = not scheduled
        self.done = False          # finished for good (no restart)
        self.waiting = None        # (reason, message) while not running
        self.polls = 0


class _Pod(object):
    """Kubelet's memory of one pod (by uid)."""

    def __init__(self, pod, now):
        spec = pod.get("spec") or {}
        self.uid = pod["metadata"]["uid"]
        self.key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        self.node = spec.get("nodeName")
        self.seen_at = now
        self.sandbox_at = None
        self.ip = None
        self.inits = [_Container(c, init=True) for c in spec.get("initContainers") or ()]
        self.containers = [_Container(c) for c in spec.get("containers") or ()]
        self.stopping_since = None
        self.failed_reason = None     # (reason, message) for pod-level failures (deadline)
        self.terminal = False


class Kubelet(Controller):
    name = "kubelet"

    def __init__(self, manager):
        super().__init__(manager)
        self.runtime = manager.sim.runtime
        self.routes = {PODS: self._on_pod, NODES: self._on_node}
        self._pods = {}               # uid -> _Pod (pods this kubelet runs)
        self._by_key = {}             # (namespace, name) -> uid
        self._adopted = set()         # uids of pods found already running (no runs, no writes)
        self._orphan_since = {}       # uid -> sim time first seen bound to a missing node
        self._node_nets = {}          # node -> (network, next host offset, {ip})
        self._node_seq = 0
        self._pulled = set()          # (node, image) already present
        self.runtime.watch(self._on_run_change)

    def _on_run_change(self, run):
        """A container exited or changed readiness outside the kubelet's timers (an HTTP handler)."""
        self.enqueue((run.pod["metadata"]["namespace"], run.pod["metadata"]["name"]))

    # ----------------------------------------------------------------------------- settings
    def _start_delay(self):
        runtime = self.manager.settings("runtime")
        return float(runtime.get("containerStartSeconds", 2))

    # ----------------------------------------------------------------------------- events
    def initial_keys(self):
        return [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in self.store.list(PODS)[0]
                if (p.get("spec") or {}).get("nodeName")]

    def _on_pod(self, event):
        obj = event.obj
        if event.type == "DELETED" or (obj.get("spec") or {}).get("nodeName"):
            self.enqueue((obj["metadata"]["namespace"], obj["metadata"]["name"]))

    def _on_node(self, event):
        name = event.obj["metadata"]["name"]
        was_ready = event.old is not None and podutil.node_ready(event.old)
        if event.type == "DELETED" or podutil.node_ready(event.obj) != was_ready:
            for key in list(self.manager.index.pods_by_node.get(name, ())):
                self.enqueue(key)

    # ----------------------------------------------------------------------------- reconcile
    def reconcile(self, key):
        pod = self.read(PODS, *key)
        now = self.clock.now()
        uid = self._by_key.get(key)
        if uid is not None and (pod is None or pod["metadata"]["uid"] != uid):
            self._forget(key, uid)
        if pod is None or not (pod.get("spec") or {}).get("nodeName"):
            return
        uid = pod["metadata"]["uid"]
        node = self.read(NODES, "", pod["spec"]["nodeName"])
        if node is None:
            self._orphaned(pod, now)
            return
        state = self._pods.get(uid)
        if state is None and uid not in self._adopted:
            self._by_key[key] = uid
            if self._adoptable(pod):
                self._adopted.add(uid)
            else:
                state = self._pods[uid] = _Pod(pod, now)
        if pod["metadata"].get("deletionTimestamp"):
            self._terminate(pod, state, node, now)
            return
        if state is None or not podutil.node_ready(node):
            return
        if state.sandbox_at is None:
            state.sandbox_at = now + self._start_delay()
        wake = self._progress(pod, state, node, now)
        self._write_status(pod, state, node, now)
        if wake is not None and math.isfinite(wake):
            self.enqueue_after(max(wake - now, 0.0), key)

    @staticmethod
    def _adoptable(pod):
        status = pod.get("status") or {}
        return status.get("phase") in ("Running", "Succeeded", "Failed") and bool(status.get("containerStatuses"))

    def _forget(self, key, uid):
        """The pod is gone (or replaced by a new one of the same name): drop its runs and IP."""
        self._by_key.pop(key, None)
        self._adopted.discard(uid)
        self._orphan_since.pop(uid, None)
        state = self._pods.pop(uid, None)
        if state is not None:
            for cont in state.inits + state.containers:
                if cont.run is not None and not cont.run.finished:
                    cont.run.kill(self.clock.now())
            self._release_ip(state)
        self.runtime.forget(key[0], key[1], uid)

    def _orphaned(self, pod, now):
        """PodGC: a pod bound to a node that does not exist is deleted after a quarantine."""
        uid = pod["metadata"]["uid"]
        since = self._orphan_since.setdefault(uid, now)
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        self._by_key[key] = uid
        if now - since >= PODGC_QUARANTINE:
            self._delete(pod)
        else:
            self.enqueue_after(PODGC_QUARANTINE - (now - since), key)

    # ----------------------------------------------------------------------------- lifecycle steps
    def _progress(self, pod, state, node, now):
        """Advance containers to `now`; return the sim time of the next thing to happen."""
        if state.terminal:
            return None
        if now < state.sandbox_at:
            return state.sandbox_at
        if state.ip is None:
            state.ip = self._allocate_ip(node, state)
        deadline = (pod.get("spec") or {}).get("activeDeadlineSeconds")
        if deadline is not None and now >= state.sandbox_at + float(deadline):
            self._fail_pod(pod, state, node, now, ("DeadlineExceeded",
                                                   "Pod was active on the node longer than the specified deadline"))
            return None
        wakes = []
        if deadline is not None:
            wakes.append(state.sandbox_at + float(deadline))
        restart_policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
        if self._run_inits(pod, state, node, now, restart_policy, wakes):
            for cont in state.containers:
                self._step(pod, node, cont, now, restart_policy, wakes)
            if all(c.done for c in state.containers):
                self._finish(state, now)
                return None
        return min(wakes) if wakes else None

    def _run_inits(self, pod, state, node, now, restart_policy, wakes):
        """Run init containers in order; True once all have completed (sidecars: once started).

        An init container that fails under restartPolicy Never fails the pod; otherwise it is
        restarted with back-off (Init:CrashLoopBackOff)."""
        policy = "Never" if restart_policy == "Never" else "OnFailure"
        for cont in state.inits:
            self._step(pod, node, cont, now, "Always" if cont.sidecar else policy, wakes)
            if cont.sidecar:
                if cont.run is None:
                    return False
                continue
            if not cont.done:
                return False
            if cont.run.exit_code != 0:
                self._fail_pod(pod, state, node, now, None)
                return False
        return True

    def _step(self, pod, node, cont, now, policy, wakes):
        """Start, observe and restart one container according to `policy` (Always/OnFailure/Never)."""
        for _attempt in range(4):
            if cont.done:
                return
            run = cont.run
            if run is None or (run.finished and cont.next_start is not None):
                if cont.next_start is not None and now < cont.next_start:
                    wakes.append(cont.next_start)
                    return
                blocked = self._blocked(pod)
                if blocked:   # a fault (simcluster/faults.py): the image never arrives
                    cont.waiting, cont.next_start = blocked, now + BACKOFF_START
                    wakes.append(cont.next_start)
                    return
                if self._unpullable(cont.spec.get("image") or ""):
                    self._pull_failed(pod, node, cont, now)
                    wakes.append(cont.next_start)
                    return
                self._start(pod, node, cont, now)
                run = cont.run
            run.advance(now)
            if not run.finished:
                nxt = self._poll_time(run, cont, pod, now)
                if nxt is not None:
                    wakes.append(nxt)
                return
            if not (policy == "Always" or (policy == "OnFailure" and run.exit_code != 0)):
                cont.done = True
                return
            self._schedule_restart(pod, node, cont, run, now)

    def _blocked(self, pod):
        faults = getattr(self.manager.sim, "faults", None)
        return faults.blocks_start(pod) if faults is not None else None

    def _schedule_restart(self, pod, node, cont, run, now):
        """The first restart is immediate, later ones wait 10 s doubling to 5 min (CrashLoopBackOff);
        a container that ran for 10 minutes starts over with no back-off."""
        cont.last = self._terminated(run)
        if run.finished_at - run.started_at >= 2 * BACKOFF_MAX:
            cont.backoff = 0.0
        delay = cont.backoff
        cont.backoff = BACKOFF_START if delay == 0 else min(delay * 2, BACKOFF_MAX)
        cont.next_start = max(run.finished_at + delay, now) if delay else now
        if not delay:
            return
        meta = pod["metadata"]
        cont.waiting = ("CrashLoopBackOff", "back-off %ds restarting failed container=%s pod=%s_%s(%s)" % (
            int(delay), cont.name, meta["name"], meta["namespace"], meta["uid"]))
        self.manager.recorder.event(pod, "Warning", "BackOff", "Back-off restarting failed container %s in pod "
                                    "%s_%s(%s)" % (cont.name, meta["name"], meta["namespace"], meta["uid"]),
                                    COMPONENT, node["metadata"]["name"], self._field_path(cont))

    def _finish(self, state, now):
        """Every regular container is done: stop sidecars; the pod is terminal."""
        state.terminal = True
        for cont in state.inits:
            if cont.sidecar and cont.run is not None and not cont.run.finished:
                cont.run.kill(now)
            cont.next_start = None
            cont.done = True

    def _poll_time(self, run, cont, pod, now):
        """When to look at a running container again: its next program event, readiness delays;
        polls of long-running busy loops back off so they cost little."""
        times = []
        nxt = run.next_wake()
        if nxt is not None and math.isfinite(nxt):
            cont.polls += 1
            floor = min(MIN_POLL * (1 + cont.polls // 20), MAX_POLL)
            times.append(max(nxt, now + (floor if cont.polls > 20 else 0)))
        probe = cont.spec.get("readinessProbe") or {}
        ready_at = run.started_at + float(probe.get("initialDelaySeconds") or 0)
        if ready_at > now:
            times.append(ready_at)
        startup = cont.spec.get("startupProbe") or {}
        started_at = run.started_at + float(startup.get("initialDelaySeconds") or 0)
        if started_at > now:
            times.append(started_at)
        ready_change = run.ready_changes_at(now)
        if ready_change is not None:
            times.append(ready_change)
        return min(times) if times else None

    def _start(self, pod, node, cont, now):
        node_name = node["metadata"]["name"]
        image = cont.spec.get("image") or ""
        self._pull_event(pod, cont, node_name, image)
        if cont.run is not None:
            cont.restarts += 1
        state = self._pods[pod["metadata"]["uid"]]
        cont.run = self.runtime.start_container(pod, cont.spec, init=cont.init, now=now, restart_count=cont.restarts,
                                                pod_ip=state.ip, host_ip=self._host_ip(node))
        cont.next_start = None
        cont.waiting = None
        cont.polls = 0
        path = self._field_path(cont)
        if cont.run.start_error:
            self.manager.recorder.event(pod, "Warning", "Failed", "Error: %s" % cont.run.start_error, COMPONENT,
                                        node_name, path)
            return
        self.manager.recorder.event(pod, "Normal", "Created", "Created container: %s" % cont.name, COMPONENT,
                                    node_name, path)
        self.manager.recorder.event(pod, "Normal", "Started", "Started container %s" % cont.name, COMPONENT,
                                    node_name, path)

    def _unpullable(self, image):
        patterns = self.manager.settings("runtime").get("unpullableImages") or ()
        return any(fnmatch.fnmatchcase(image, p) for p in patterns)

    def _pull_failed(self, pod, node, cont, now):
        """A pull that fails (kubelet's image manager): ErrImagePull on the first try, then ImagePullBackOff
        with the crash-loop back-off between tries, and kubelet's Failed/BackOff events."""
        image = cont.spec.get("image") or ""
        node_name = node["metadata"]["name"]
        path = self._field_path(cont)
        reference = image if "/" in image.split(":", 1)[0] else "docker.io/library/" + image
        error = ('rpc error: code = NotFound desc = failed to pull and unpack image "%s": failed to resolve '
                 'reference "%s": %s: not found' % (reference, reference, reference))
        recorder = self.manager.recorder
        if cont.waiting is None or cont.waiting[0] not in ("ErrImagePull", "ImagePullBackOff"):
            recorder.event(pod, "Normal", "Pulling", 'Pulling image "%s"' % image, COMPONENT, node_name, path)
            recorder.event(pod, "Warning", "Failed", 'Failed to pull image "%s": %s' % (image, error), COMPONENT,
                           node_name, path)
            recorder.event(pod, "Warning", "Failed", "Error: ErrImagePull", COMPONENT, node_name, path)
            cont.waiting = ("ErrImagePull", error)
        else:
            recorder.event(pod, "Normal", "BackOff", 'Back-off pulling image "%s"' % image, COMPONENT, node_name,
                           path)
            recorder.event(pod, "Warning", "Failed", "Error: ImagePullBackOff", COMPONENT, node_name, path)
            cont.waiting = ("ImagePullBackOff", 'Back-off pulling image "%s": ErrImagePull: %s' % (image, error))
        delay = cont.backoff or BACKOFF_START
        cont.backoff = min(delay * 2, BACKOFF_MAX)
        cont.next_start = now + delay

    def _pull_event(self, pod, cont, node_name, image):
        untagged = ":" not in image.rsplit("/", 1)[-1]
        policy = cont.spec.get("imagePullPolicy") or (
            "Always" if image.endswith(":latest") or untagged else "IfNotPresent")
        path = self._field_path(cont)
        if policy != "Always" and (node_name, image) in self._pulled:
            self.manager.recorder.event(pod, "Normal", "Pulled", 'Container image "%s" already present on machine'
                                        % image, COMPONENT, node_name, path)
            return
        size = 1000000 + int(hashlib.sha256(image.encode()).hexdigest()[:6], 16)
        self.manager.recorder.event(pod, "Normal", "Pulling", 'Pulling image "%s"' % image, COMPONENT, node_name,
                                    path)
        self.manager.recorder.event(pod, "Normal", "Pulled", 'Successfully pulled image "%s" in 1.2s (1.2s '
                                    'including waiting). Image size: %d bytes.' % (image, size), COMPONENT,
                                    node_name, path)
        self._pulled.add((node_name, image))

    @staticmethod
    def _field_path(cont):
        return "spec.%s{%s}" % ("initContainers" if cont.init else "containers", cont.name)

    def _fail_pod(self, pod, state, node, now, reason):
        """Stop everything; the pod ends Failed (init failure under restartPolicy Never, deadline)."""
        for cont in state.inits + state.containers:
            if cont.run is not None and not cont.run.finished:
                cont.run.kill(now)
                self.manager.recorder.event(pod, "Normal", "Killing", "Stopping container %s" % cont.name,
                                            COMPONENT, node["metadata"]["name"], self._field_path(cont))
            cont.done = True
            cont.next_start = None
        state.terminal = True
        state.failed_reason = reason

    def _terminate(self, pod, state, node, now):
        """Graceful deletion: stop containers, wait for them (or the grace period), delete.

        Programs that ignore SIGTERM (a shell script as PID 1) keep running until the grace period
        ends, as on a real node. On a node that is not Ready nothing happens (its kubelet is down)."""
        if not podutil.node_ready(node):
            return
        running = [] if state is None else [c for c in state.inits + state.containers
                                            if c.run is not None and not c.run.finished]
        if state is not None and state.stopping_since is None:
            state.stopping_since = now
            for cont in running:
                cont.run.terminate(now)
                self.manager.recorder.event(pod, "Normal", "Killing", "Stopping container %s" % cont.name,
                                            COMPONENT, node["metadata"]["name"], self._field_path(cont))
        for cont in running:
            cont.run.advance(now)
        running = [c for c in running if not c.run.finished]
        if running:
            grace = pod["metadata"].get("deletionGracePeriodSeconds")
            if grace is None:
                grace = podutil.field(pod.get("spec"), "terminationGracePeriodSeconds", 30)
            kill_at = state.stopping_since + float(grace)
            if now < kill_at:
                self.enqueue_after(kill_at - now, state.key)
                return
            for cont in running:
                cont.run.kill(now)
        self._delete(pod)

    def _delete(self, pod):
        meta = pod["metadata"]
        try:
            self.store.delete(PODS, meta["namespace"], meta["name"], grace_period=0,
                              preconditions={"uid": meta["uid"]})
        except ApiError as exc:
            if exc.code not in (404, 409):
                raise

    # ----------------------------------------------------------------------------- status
    def _write_status(self, pod, state, node, now):
        status = self._status(pod, state, node, now)
        current = pod.get("status") or {}
        merged = dict(current)
        merged.update(status)
        merged["conditions"] = self._conditions(current.get("conditions"), status.pop("_conditions"), now)
        merged.pop("_conditions", None)
        if merged == current:
            return
        fresh = dict(pod)           # shallow: the store deep-copies what it is given
        fresh["status"] = merged
        self.store.update(PODS, fresh, subresource="status")

    def _status(self, pod, state, node, now):
        spec = pod.get("spec") or {}
        stamp = self.clock.timestamp
        host_ip = self._host_ip(node)
        status = {"hostIP": host_ip, "hostIPs": [{"ip": host_ip}], "qosClass": podutil.qos_class(pod),
                  "startTime": stamp(state.seen_at)}
        sandbox = now >= state.sandbox_at and state.ip is not None
        if state.ip is not None:
            status["podIP"] = state.ip
            status["podIPs"] = [{"ip": state.ip}]
        inits_done = all(c.run is not None and (c.sidecar or c.done and c.run.exit_code == 0) for c in state.inits)
        # kubelet's default waiting reason is PodInitializing for every container of a pod with init containers
        init_statuses = [self._container_status(c, pod, now, "PodInitializing") for c in state.inits]
        statuses = [self._container_status(c, pod, now, "PodInitializing" if state.inits else "ContainerCreating")
                    for c in state.containers]
        if init_statuses:
            status["initContainerStatuses"] = init_statuses
        status["containerStatuses"] = statuses
        phase = self._phase(spec, state, statuses, init_statuses, inits_done)
        status["phase"] = phase
        if state.failed_reason:
            status["reason"], status["message"] = state.failed_reason
        terminal = phase in podutil.TERMINAL_PHASES
        unready = [s["name"] for s in statuses if not s["ready"]]
        incomplete = [c.name for c in state.inits
                      if not (c.run is not None and (c.sidecar or c.done and c.run.exit_code == 0))]
        conds = [("PodReadyToStartContainers", "True" if sandbox and not terminal else "False", None, None)]
        # status/generate.go: Initialized=True/PodCompleted for a Succeeded pod only; a pod that failed in an
        # init container stays uninitialised (kubectl then shows Init:Error)
        if phase == "Succeeded":
            conds.append(("Initialized", "True", "PodCompleted", None))
        elif incomplete:
            conds.append(("Initialized", "False", "ContainersNotInitialized",
                          "containers with incomplete status: [%s]" % " ".join(incomplete)))
        else:
            conds.append(("Initialized", "True", None, None))
        if terminal:
            why = "PodCompleted" if phase == "Succeeded" else "PodFailed"
            conds.append(("Ready", "False", why, None))
            conds.append(("ContainersReady", "False", why, None))
        else:
            if unready:
                msg = "containers with unready status: [%s]" % " ".join(unready)
                conds.append(("Ready", "False", "ContainersNotReady", msg))
                conds.append(("ContainersReady", "False", "ContainersNotReady", msg))
            else:
                gate = self._unready_gate(pod)
                if gate:
                    conds.append(("Ready", "False", "ReadinessGatesNotReady", gate))
                else:
                    conds.append(("Ready", "True", None, None))
                conds.append(("ContainersReady", "True", None, None))
        conds.append(("PodScheduled", "True", None, None))
        status["_conditions"] = conds
        return status

    def _conditions(self, current, wanted, now):
        out = copy.deepcopy(current or [])
        stamp = self.clock.timestamp(now)
        for ctype, status, reason, message in wanted:
            podutil.set_condition(out, ctype, status, reason, message, now=stamp, probe_time=True)
        order = {"PodReadyToStartContainers": 0, "Initialized": 1, "Ready": 2, "ContainersReady": 3,
                 "PodScheduled": 4}
        out.sort(key=lambda c: order.get(c.get("type"), 5))
        return out

    @staticmethod
    def _unready_gate(pod):
        for gate in (pod.get("spec") or {}).get("readinessGates") or ():
            ctype = gate.get("conditionType")
            cond = podutil.get_condition(pod, ctype)
            if cond is None:
                return 'corresponding condition of pod readiness gate "%s" does not exist.' % ctype
            if cond.get("status") != "True":
                return 'the status of pod readiness gate "%s" is not "True", but %s' % (ctype, cond.get("status"))
        return None

    def _phase(self, spec, state, statuses, init_statuses, inits_done):
        """kubelet getPhase()."""
        if state.failed_reason is not None:
            return "Failed"
        if not inits_done:
            for cont in state.inits:
                if not cont.sidecar and cont.done and cont.run is not None and cont.run.exit_code != 0:
                    return "Failed"
            return "Pending"
        running = stopped = succeeded = waiting = 0
        for st in statuses:
            if "running" in st["state"]:
                running += 1
            elif "terminated" in st["state"]:
                stopped += 1
                if st["state"]["terminated"]["exitCode"] == 0:
                    succeeded += 1
            elif st.get("lastState", {}).get("terminated"):
                stopped += 1
            else:
                waiting += 1
        if waiting:
            return "Pending"
        if running:
            return "Running"
        restart_policy = spec.get("restartPolicy") or "Always"
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"

    def _container_status(self, cont, pod, now, initial_reason):
        spec = cont.spec
        run = cont.run
        out = {"name": cont.name, "image": spec.get("image") or "", "imageID": "", "ready": False,
               "restartCount": cont.restarts, "started": False}
        if run is None:
            out["state"] = {"waiting": {"reason": cont.waiting[0] if cont.waiting else initial_reason}}
            if cont.waiting and cont.waiting[1]:
                out["state"]["waiting"]["message"] = cont.waiting[1]
        else:
            out["image"] = run.image
            out["imageID"] = run.image_id
            out["containerID"] = run.container_id
            if cont.next_start is not None and run.finished:
                waiting = {"reason": cont.waiting[0] if cont.waiting else "ContainerCreating"}
                if cont.waiting and cont.waiting[1]:
                    waiting["message"] = cont.waiting[1]
                out["state"] = {"waiting": waiting}
            elif run.finished:
                out["state"] = {"terminated": self._terminated(run)}
            else:
                out["state"] = {"running": {"startedAt": self.clock.timestamp(run.started_at)}}
                startup = spec.get("startupProbe") or {}
                out["started"] = now >= run.started_at + float(startup.get("initialDelaySeconds") or 0)
                probe = spec.get("readinessProbe") or {}
                out["ready"] = bool(out["started"] and run.ready(now) and
                                    now >= run.started_at + float(probe.get("initialDelaySeconds") or 0))
        if cont.last is not None:
            out["lastState"] = {"terminated": cont.last}
        else:
            out["lastState"] = {}
        if cont.init and not cont.sidecar:
            out["started"] = bool(run is not None and not run.finished)
        return out

    def _terminated(self, run):
        term = {"exitCode": run.exit_code, "reason": run.reason,
                "startedAt": self.clock.timestamp(run.started_at),
                "finishedAt": self.clock.timestamp(run.finished_at), "containerID": run.container_id}
        if run.message:
            term["message"] = run.message
        return term

    # ----------------------------------------------------------------------------- addresses
    def _host_ip(self, node):
        for addr in (node.get("status") or {}).get("addresses") or ():
            if addr.get("type") == "InternalIP":
                return addr.get("address")
        net = self._node_net(node)
        return str(ipaddress.ip_address("172.18.0.0") + 2 + net[3])

    def _node_net(self, node):
        name = node["metadata"]["name"]
        net = self._node_nets.get(name)
        if net is None:
            seq = self._node_seq
            self._node_seq += 1
            cidr = (node.get("spec") or {}).get("podCIDR")
            try:
                network = ipaddress.ip_network(cidr) if cidr else None
            except ValueError:
                network = None
            if network is None:
                network = ipaddress.ip_network((int(POD_CIDR_BASE.network_address) + 256 * seq, 24))
            net = [network, 2, set(), seq]
            self._node_nets[name] = net
        return net

    def _allocate_ip(self, node, state):
        net = self._node_net(node)
        network, size = net[0], net[0].num_addresses
        for _attempt in range(size):
            offset = net[1]
            net[1] = offset + 1 if offset + 1 < size - 1 else 2
            addr = str(network.network_address + offset)
            if addr not in net[2]:
                net[2].add(addr)
                return addr
        raise ApiError.internal("no free pod IP on node %s" % node["metadata"]["name"])

    def _release_ip(self, state):
        net = self._node_nets.get(state.node)
        if net is not None and state.ip:
            net[2].discard(state.ip)
