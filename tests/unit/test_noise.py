"""Noise control decisions (pure): inhibition, flapping, start-up grace, retrospective."""

from __future__ import annotations

from alerts.model import EventKind
from alerts.noise import NoiseControl
from alerts.tracker import AlertTracker
from monitor.model import Category, Level, Signal


def opened(
    tracker: AlertTracker,
    sensor: str,
    level: int,
    category: Category = Category.PROCESS,
    rule: str = "r",
    ts: float = 100.0,
    retro: bool = False,
):  # type: ignore[no-untyped-def]
    (event,) = tracker.observe(
        Signal(rule, sensor, "s", Level(level), category, ts, ts, retrospective=retro), ts
    )
    return event


def decide(noise: NoiseControl, tracker: AlertTracker, event, now: float = 1000.0):  # type: ignore[no-untyped-def]
    return noise.decide(event, now, list(tracker.active.values()), lambda s: "t", lambda s: "k")


def test_red_on_the_site_holds_back_yellow_and_blue() -> None:
    tracker, noise = AlertTracker(), NoiseControl(started=0)
    opened(tracker, "a", 1)
    yellow = opened(tracker, "b", 3)
    orange = opened(tracker, "c", 2)
    assert decide(noise, tracker, yellow) == (False, "inhibited: a red alert on the same site")
    assert decide(noise, tracker, orange)[0]


def test_sensor_in_fault_inhibits_its_process_alerts() -> None:
    tracker, noise = AlertTracker(), NoiseControl(started=0)
    opened(tracker, "a", 4, Category.SENSOR_HEALTH, rule="flat")
    process = opened(tracker, "a", 3)
    notify, reason = decide(noise, tracker, process)
    assert not notify and "sensor_health" in reason


def test_flapping_holds_until_stable_and_grace_and_retro() -> None:
    tracker, noise = AlertTracker(), NoiseControl(started=0, flap_changes=3, flap_window_s=60)
    signals = [3, 0, 3, 0, 3]
    verdicts = []
    for i, level in enumerate(signals):
        for event in tracker.observe(
            Signal("r", "a", "s", Level(level), Category.PROCESS, float(i), float(i)), float(i)
        ):
            verdicts.append(decide(noise, tracker, event, now=float(i))[1])
    assert verdicts[:3] == ["notify"] * 3 and verdicts[3:] == ["flapping", "flapping"]
    grace = NoiseControl(started=0, startup_grace_s=120)
    offline = opened(AlertTracker(), "z", 4, Category.DATA_INTERRUPTION)
    assert decide(grace, AlertTracker(), offline, now=60.0) == (False, "start-up grace")
    retro = opened(AlertTracker(), "y", 2, retro=True)
    assert decide(grace, AlertTracker(), retro) == (False, "retrospective")
    assert offline.kind == EventKind.OPENED


def test_shelving_expires_and_silences_end() -> None:
    from alerts.noise import Shelf, Silence

    tracker, noise = AlertTracker(), NoiseControl(started=0)
    event = opened(tracker, "a", 2)
    noise.shelves[event.alert.id] = Shelf(event.alert.id, until=500.0, reason="known", by="op")
    assert decide(noise, tracker, event, now=499.0)[1].startswith("shelved by op")
    assert decide(noise, tracker, event, now=500.0) == (True, "notify")  # expired
    noise.silences["m"] = Silence("m", 600.0, 700.0, "maintenance", "op", site="s")
    assert decide(noise, tracker, event, now=650.0)[1].startswith("silenced (m)")
    assert decide(noise, tracker, event, now=700.0) == (True, "notify")
