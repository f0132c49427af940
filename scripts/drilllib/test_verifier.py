"""Unit tests of the verifier: a consistent run passes, and each kind of damage is reported."""
import copy
import os
import stat
import tempfile
import unittest

from drilllib import verifier

SALE = 7
T = 1_767_225_600_000_000  # microseconds


def checkout(user, item, code, at, expires=None):
    return {"client": "b1", "op": "checkout", "user": user, "item": item, "sale": SALE, "invoke": at, "complete": at + 1000,
            "status": 200, "result_code": code, "expires_at": expires or at + 10_000_000}


def refusal(user, item, error, at):
    return {"client": "b1", "op": "checkout", "user": user, "item": item, "invoke": at, "complete": at + 1000,
            "status": 403 if error == "user_limit_reached" else 409, "error": error}


def purchase(code, user, item, at):
    return {"client": "b1", "op": "purchase", "code": code, "invoke": at, "complete": at + 2000, "status": 200,
            "result_user": user, "result_sale": SALE, "result_item": item, "purchased_at": at + 1000}


class Run:
    """A sale of two items bought by u1 and u2, with one refusal, as history and PostgreSQL rows."""

    def __init__(self):
        self.ops = [checkout("u1", 1, "c1", T), purchase("c1", "u1", 1, T + 100_000),
                    checkout("u2", 2, "c2", T + 200_000), purchase("c2", "u2", 2, T + 300_000),
                    refusal("u3", 1, "item_sold", T + 400_000),
                    {"client": "b2", "op": "checkout", "user": "u3", "item": 2, "invoke": T, "complete": None, "status": None}]
        self.purchases = [["c1", str(SALE), "1", "u1", str(T + 101_000)], ["c2", str(SALE), "2", "u2", str(T + 301_000)]]
        self.attempts = [["a1", str(SALE), "1", "u1", "held", "c1", str(T + 10_000_000), "0"],
                         ["a2", str(SALE), "2", "u2", "held", "c2", str(T + 10_200_000), "0"],
                         ["a3", str(SALE), "1", "u3", "item_sold", "", "", "0"]]

    def check(self, items=2, limit=1):
        return verifier.check_sale(self.ops, self.purchases, self.attempts, SALE, items, limit)


class CheckSaleTests(unittest.TestCase):
    def test_a_consistent_run_passes(self):
        problems, figures = Run().check()
        self.assertEqual(problems, [])
        self.assertEqual((figures["lost"], figures["oversold"], figures["overlimit"], figures["missing_attempts"]), (0, 0, 0, 0))
        self.assertEqual((figures["pg_sold_in_sale"], figures["acked_purchases"], figures["acked_refusals"]), (2, 2, 1))

    def expect(self, run, prefix, **kwargs):
        problems, _ = run.check(**kwargs)
        self.assertTrue(any(p.startswith(prefix) for p in problems), f"{prefix} not in {problems}")

    def test_an_acknowledged_purchase_missing_from_postgres_is_lost(self):
        run = Run()
        del run.purchases[0]
        self.expect(run, "S4 acknowledged purchase missing")
        self.expect(run, "L1 sale")

    def test_an_item_sold_twice(self):
        run = Run()
        run.purchases.append(["c9", str(SALE), "1", "u9", str(T)])
        self.expect(run, "S1 item sold twice", items=3)

    def test_a_user_over_the_limit(self):
        run = Run()
        run.purchases[1][3] = "u1"
        self.expect(run, "S2 user over the limit")

    def test_clients_told_two_codes_for_one_item(self):
        run = Run()
        run.ops.append(purchase("c3", "u3", 1, T + 500_000))
        self.expect(run, "S1 clients were told")

    def test_a_handed_out_code_missing_from_the_attempts(self):
        run = Run()
        del run.attempts[0]
        self.expect(run, "S5 handed-out code not in checkout_attempts")

    def test_a_refusal_missing_from_the_attempts(self):
        run = Run()
        del run.attempts[2]
        self.expect(run, "S5 1 acknowledged refusals")

    def test_purchased_at_differs(self):
        run = Run()
        run.purchases[0][4] = str(T + 900_000)
        self.expect(run, "S4 purchased_at differs")

    def test_a_code_bought_for_another_user(self):
        run = Run()
        run.ops[1] = purchase("c1", "u2", 1, T + 100_000)
        run.purchases[0][3] = "u2"
        self.expect(run, "S7 code bought another item/user")

    def test_a_code_sold_after_a_410(self):
        run = Run()
        expired = dict(purchase("c1", "u1", 1, T + 50_000), status=410, error="code_expired")
        run.ops.insert(1, expired)
        self.expect(run, "S6 code sold after a 410")


class CheckOthersTests(unittest.TestCase):
    RESULT = {"first_sold_out_s": 80.0, "errors": {}, "endpoints": {"checkout": {"outcomes": {"200": 5, "503 ": 2}}}}

    def test_buyers_that_sold_out_cleanly_pass(self):
        self.assertEqual(verifier.check_buyers(self.RESULT, Run().ops, T, 10), [])

    def test_buyers_findings(self):
        result = copy.deepcopy(self.RESULT)
        del result["first_sold_out_s"]
        result["errors"]["gave_up"] = 2
        result["endpoints"]["purchase"] = {"outcomes": {"500 ": 1, "502 ": 1}}
        late = dict(Run().ops[0], status=503, invoke=T + 11_000_000)
        problems = verifier.check_buyers(result, [late], T, 10, allowed_5xx=("502",))
        self.assertEqual(len(problems), 4, problems)
        self.assertTrue(any("500" in p for p in problems) and not any("502 " in p for p in problems))

    def test_flood(self):
        clean = {"sent": 10, "fivexx_count": 0, "fivexx": [], "twoxx_count": 0, "twoxx": []}
        self.assertEqual(verifier.check_flood(clean, 10), [])
        self.assertEqual(len(verifier.check_flood(dict(clean, sent=9, fivexx_count=1, twoxx_count=1), 10)), 3)

    def test_sale_views(self):
        good = {"sale_id": SALE, "items": {"total": 2, "sold": 2, "held": 0}}
        self.assertEqual(verifier.check_sale_views({"A": good}, SALE, 2), [])
        held = {"sale_id": SALE, "items": {"total": 2, "sold": 1, "held": 1}}
        self.assertEqual(len(verifier.check_sale_views({"A": held, "B": dict(good, sale_id=8)}, SALE, 2)), 2)

    def test_bench_post_checks(self):
        self.assertTrue(verifier.check_sellout({"purchases": 3, "errors": {}}, ["3", "3", "1"],
                                               {"items": {"total": 3, "sold": 3}})["ok"])
        self.assertFalse(verifier.check_sellout({"purchases": 3, "errors": {}}, ["3", "2", "1"],
                                                {"items": {"total": 3, "sold": 3}})["ok"])
        self.assertTrue(verifier.check_flood_attempts({"checkouts_answered_non_503": 5, "errors": {}}, 5)["ok"])
        self.assertFalse(verifier.check_flood_attempts({"checkouts_answered_non_503": 5, "errors": {}}, 4)["ok"])
        self.assertTrue(verifier.check_hot({"purchases": 10, "errors": {}}, ["10", "10", "10", "7"])["ok"])
        self.assertFalse(verifier.check_hot({"purchases": 10, "errors": {}}, ["11", "10", "11", "7"])["ok"])

    def test_linearizability_reads_the_checkers_verdict(self):
        with tempfile.TemporaryDirectory() as folder:
            for answer, code in (("yes", 0), ("no", 1)):
                fake = os.path.join(folder, f"check-{answer}")
                with open(fake, "w") as f:
                    f.write(f"#!/bin/sh\necho 'item 1 of sale 7: ...'\necho linearizable={answer}\nexit {code}\n")
                os.chmod(fake, stat.S_IRWXU)
                verdict, text = verifier.linearizability(fake, "h.jsonl", 2, 1, 10, 3600)
                self.assertEqual(verdict, answer)
                self.assertIn("item 1", text)
            broken = os.path.join(folder, "broken")
            with open(broken, "w") as f:
                f.write("#!/bin/sh\necho usage >&2\nexit 2\n")
            os.chmod(broken, stat.S_IRWXU)
            self.assertEqual(verifier.linearizability(broken, "h.jsonl", 2, 1, 10, 3600)[0], "error")

    def test_load_history_skips_the_rules_line(self):
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            f.write('{"op":"rules","items_per_sale":2}\n{"client":"b1","op":"purchase","code":"c1","invoke":1,'
                    '"complete":null,"status":null}\n\n')
        try:
            self.assertEqual([op["op"] for op in verifier.load_history(f.name)], ["purchase"])
        finally:
            os.unlink(f.name)


if __name__ == "__main__":
    unittest.main()
