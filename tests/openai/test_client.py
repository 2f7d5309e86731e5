"""The official `openai` Python client against FineTune Lab's
OpenAI-compatible API, talking to a model trained here and to external
models (OpenAI-compatible and Anthropic) registered behind it.

Run by `api/tests/binary/openai_client.rs`, which starts the server, trains
a small chat model and sets OPENAI_BASE_URL, OPENAI_API_KEY and
FTL_MODEL_ID. Expected replies are what the training data taught the model.
"""

import os
import unittest

import openai
from openai import OpenAI

MODEL = os.environ["FTL_MODEL_ID"]


class OpenAiClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.client = OpenAI(max_retries=0)

    def test_models_lists_the_trained_model(self):
        ids = [m.id for m in self.client.models.list()]
        self.assertIn(MODEL, ids)
        self.assertEqual(self.client.models.retrieve(MODEL).id, MODEL)
        with self.assertRaises(openai.NotFoundError):
            self.client.models.retrieve("no-such-model")

    def test_chat_completion_answers_what_it_was_taught(self):
        r = self.client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "say teal"}], temperature=0, max_tokens=32
        )
        self.assertEqual(r.object, "chat.completion")
        self.assertEqual(r.choices[0].message.role, "assistant")
        self.assertEqual(r.choices[0].message.content, "teal teal teal")
        self.assertEqual(r.choices[0].finish_reason, "stop")
        self.assertGreater(r.usage.prompt_tokens, 0)
        self.assertEqual(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens)

    def test_streaming_yields_the_same_text_and_usage_last(self):
        plain = self.client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "say plum"}], temperature=0, max_tokens=32
        )
        chunks = list(
            self.client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": "say plum"}],
                temperature=0,
                max_tokens=32,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        self.assertEqual(text, plain.choices[0].message.content)
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        self.assertEqual(finishes, ["stop"])
        self.assertEqual(chunks[-1].choices, [])
        self.assertEqual(chunks[-1].usage.completion_tokens, plain.usage.completion_tokens)

    def test_max_tokens_cuts_with_length(self):
        r = self.client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "say teal"}], temperature=0, max_tokens=3
        )
        self.assertEqual(r.choices[0].finish_reason, "length")
        self.assertEqual(r.usage.completion_tokens, 3)

    def test_errors_are_the_clients_exceptions(self):
        with self.assertRaises(openai.NotFoundError):
            self.client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
        with self.assertRaises(openai.BadRequestError):
            self.client.chat.completions.create(model=MODEL, messages=[], max_tokens=5)
        bad = OpenAI(api_key="ftl_not_a_key", max_retries=0)
        with self.assertRaises(openai.AuthenticationError):
            bad.models.list()


EXTERNAL = os.environ.get("FTL_EXTERNAL_OPENAI_ID")


@unittest.skipUnless(EXTERNAL, "no external models registered")
class ExternalModelsTest(unittest.TestCase):
    """Models served by other APIs, through FineTune Lab's: the test's
    provider answers `echo: <last user message>` in 4-byte pieces and
    counts prompt tokens as the bytes of the messages' contents."""

    @classmethod
    def setUpClass(cls):
        cls.client = OpenAI(max_retries=0)

    def test_an_openai_compatible_model_answers_with_the_providers_usage(self):
        r = self.client.chat.completions.create(
            model=EXTERNAL, messages=[{"role": "user", "content": "hello there"}], max_tokens=16
        )
        self.assertEqual(r.choices[0].message.content, "echo: hello there")
        self.assertEqual(r.choices[0].finish_reason, "stop")
        self.assertEqual(r.usage.prompt_tokens, len("hello there"))
        self.assertEqual(r.usage.completion_tokens, -(-len("echo: hello there") // 4))

    def test_streams_pass_through_piece_by_piece(self):
        chunks = list(
            self.client.chat.completions.create(
                model=EXTERNAL,
                messages=[{"role": "user", "content": "stream it"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
        self.assertEqual("".join(pieces), "echo: stream it")
        self.assertEqual(len(pieces), -(-len("echo: stream it") // 4))
        self.assertEqual(chunks[-1].usage.prompt_tokens, len("stream it"))

    def test_an_anthropic_model_speaks_openai_here(self):
        r = self.client.chat.completions.create(
            model=os.environ["FTL_EXTERNAL_ANTHROPIC_ID"],
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi claude"}],
            max_tokens=16,
        )
        self.assertEqual(r.choices[0].message.content, "echo: hi claude")
        self.assertEqual(r.choices[0].finish_reason, "stop")
        self.assertEqual(r.usage.prompt_tokens, len("Be brief.") + len("hi claude"))

    def test_a_provider_refusal_is_a_gateway_error(self):
        with self.assertRaises(openai.InternalServerError) as e:
            self.client.chat.completions.create(
                model=os.environ["FTL_EXTERNAL_BAD_KEY_ID"], messages=[{"role": "user", "content": "hi"}]
            )
        self.assertEqual(e.exception.status_code, 502)
        self.assertIn("Incorrect API key", str(e.exception))


if __name__ == "__main__":
    unittest.main(verbosity=2)
