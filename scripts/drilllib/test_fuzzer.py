"""Unit tests of the fuzzer: its requests are varied, repeatable and malformed, and its raw client reads answers."""
import random
import socket
import threading
import unittest

from drilllib import fuzzer


def requests(seed, n=3000, items=2000):
    rng = random.Random(seed)
    return [fuzzer.malformed_request(rng, items) for _ in range(n)]


class MalformedRequestTests(unittest.TestCase):
    def test_every_kind_is_drawn(self):
        labels = {label for label, _, _, _ in requests(1)}
        self.assertEqual(labels, {"random_query", "bad_user", "bad_item", "missing", "dup_unknown", "bad_utf8", "oversized",
                                  "wrong_method", "bad_read", "raw_bytes_target", "garbage", "body_or_big_header", "slow",
                                  "truncated", "bad_http"})

    def test_the_seed_repeats_the_requests(self):
        self.assertEqual(requests(5, 200), requests(5, 200))
        self.assertNotEqual(requests(5, 200), requests(6, 200))

    def test_no_request_is_a_valid_checkout_or_purchase(self):
        valid = [b"POST /checkout?user_id=flood1&id=5 HTTP/1.1", b"POST /purchase?code="]
        for label, chunks, _, _ in requests(2):
            data = b"".join(chunks)
            self.assertFalse(data.startswith(valid[0]), (label, data[:100]))
            if label == "bad_item":
                item = data.split(b"&id=", 1)[1].split(b" ", 1)[0]
                self.assertFalse(item.isdigit() and 1 <= int(item) <= 2000, (label, item))


class SendRawTests(unittest.TestCase):
    def serve_once(self, answer):
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)

        def handle():
            conn, _ = server.accept()
            conn.recv(65536)
            if answer:
                conn.sendall(answer)
            conn.close()
            server.close()
        threading.Thread(target=handle, daemon=True).start()
        return server.getsockname()[1]

    def test_reads_the_status(self):
        port = self.serve_once(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        self.assertEqual(fuzzer.send_raw(port, [b"GET / HTTP/1.1\r\n\r\n"], 0, False), 400)

    def test_a_close_without_an_answer(self):
        port = self.serve_once(b"")
        self.assertEqual(fuzzer.send_raw(port, [b"junk\r\n\r\n"], 0, True), "closed")

    def test_garbled_answer(self):
        port = self.serve_once(b"NOT HTTP\r\n")
        self.assertEqual(fuzzer.send_raw(port, [b"junk\r\n\r\n"], 0, False), "garbled")


if __name__ == "__main__":
    unittest.main()
