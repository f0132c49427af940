"""Unit tests of the supervisor: the fault plan, the sale length, and a process's kill, pause and restart."""
import random
import sys
import tempfile
import time
import unittest

from drilllib import supervisor

# A stand-in for sale-server: ignores its --port and lives until killed.
SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


class PlanTests(unittest.TestCase):
    def test_every_fault_once_in_its_own_slot(self):
        plan = supervisor.plan_faults(random.Random(1), kills=6, rollbacks=1, pauses=2, fault_seconds=75)
        kinds = sorted(kind for _, kind in plan)
        self.assertEqual(kinds, sorted(["kill"] * 5 + ["redis+kill", "pg", "rollback", "pause", "pause"]))
        moments = [when for when, _ in plan]
        self.assertEqual(moments, sorted(moments))
        self.assertTrue(3.0 <= moments[0] and moments[-1] <= 72.0, moments)
        slot = (75 - 6.0) / len(plan)
        for index, when in enumerate(moments):
            self.assertLessEqual(3.0 + slot * index, when)
            self.assertLess(when, 3.0 + slot * (index + 0.8) + 1e-9)

    def test_the_plan_follows_the_seed(self):
        def plan(seed):
            return supervisor.plan_faults(random.Random(seed), 6, 1, 1, 75)
        self.assertEqual(plan(3), plan(3))
        self.assertNotEqual(plan(3), plan(4))

    def test_the_sale_length_leaves_the_current_sale_time_to_run(self):
        for now in (0, 1_767_225_600, 1_767_225_600 + 604_799, 1_800_000_123):
            length = supervisor.choose_sale_length(now, 1800)
            self.assertGreaterEqual(length - now % length, 1800)
            self.assertGreaterEqual(length, 7 * 86400)


class InstanceTests(unittest.TestCase):
    def setUp(self):
        self.out = tempfile.mkdtemp()

    def test_kill_restart_and_an_unexpected_exit(self):
        inst = supervisor.Instance("A", 1, SLEEPER, None, self.out)
        inst.start()
        self.assertTrue(inst.alive())
        inst.kill9()
        self.assertFalse(inst.alive())
        self.assertIsNone(inst.died_unexpectedly())  # killed by the drill: expected
        inst.start()
        self.assertEqual(inst.starts, 2)
        inst.proc.terminate()  # not by the drill
        inst.proc.wait()
        self.assertIsNotNone(inst.died_unexpectedly())
        self.assertIsNone(inst.died_unexpectedly())  # reported once
        with open(f"{self.out}/pids") as f:
            self.assertEqual(len(f.read().split()), 2)

    def test_the_monitor_restarts_an_instance_that_exits_by_itself(self):
        inst = supervisor.Instance("B", 1, SLEEPER, None, self.out)
        inst.start()
        seen = []
        monitor = supervisor.Monitor([inst], lambda i, status: seen.append((i.name, status)))
        monitor.start()
        inst.proc.terminate()
        deadline = time.time() + 10
        while inst.starts < 2 and time.time() < deadline:
            time.sleep(0.05)
        monitor.stopped.set()
        self.assertEqual([name for name, _ in seen], ["B"])
        self.assertEqual(inst.starts, 2)
        inst.stop()
        self.assertFalse(inst.alive())

    def test_a_pause_stops_and_resumes(self):
        inst = supervisor.Instance("C", 1, SLEEPER, None, self.out)
        inst.start()
        self.assertTrue(inst.pause(0.1))
        self.assertTrue(inst.alive())
        inst.kill9()
        self.assertFalse(inst.pause(0.1))


if __name__ == "__main__":
    unittest.main()
