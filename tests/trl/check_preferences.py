"""Reads preference exports the way TRL's DPOTrainer does, without TRL
(which would pull in PyTorch): Hugging Face `datasets` loads the JSONL with
its JSON builder (pyarrow: every row must fit one schema), then each row
is checked against TRL's dataset conventions
(https://huggingface.co/docs/trl/dataset_formats): a preference row has
exactly the keys {prompt, chosen, rejected} (explicit prompt) or
{chosen, rejected} (implicit), plus the extra columns we name; a
conversational row's values are lists of {role, content} messages; the
prompt ends with a user turn (so a generation prompt is added) and chosen
and rejected are the assistant's turns, so prompt + chosen is the
conversation TRL applies the chat template to.

OpenAI's DPO format (https://platform.openai.com/docs/guides/direct-preference-optimization)
is checked as its fine-tuning upload validates it: `input.messages`,
`preferred_output` and `non_preferred_output` with one assistant message.

Usage: check_preferences.py trl FILE [--extra metadata] | openai FILE
Prints the row count; exits non-zero with the reason on the first bad row.
"""

import sys

from datasets import load_dataset

ROLES = {"system", "developer", "user", "assistant", "tool"}


def messages(value, where):
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where}: a non-empty list of messages expected, got {value!r}")
    for m in value:
        if not isinstance(m, dict) or set(m) < {"role", "content"}:
            raise ValueError(f"{where}: a message needs role and content: {m!r}")
        if m["role"] not in ROLES or not isinstance(m["content"], str):
            raise ValueError(f"{where}: bad message {m!r}")
    return value


def check_trl(path, extra):
    ds = load_dataset("json", data_files=path, split="train")
    columns = set(ds.column_names) - set(extra)
    if columns not in ({"prompt", "chosen", "rejected"}, {"chosen", "rejected"}):
        raise ValueError(f"not a TRL preference dataset: columns {sorted(ds.column_names)}")
    conversational = isinstance(ds[0]["chosen"], list)
    for i, row in enumerate(ds):
        where = f"row {i}"
        if conversational:
            chosen = messages(row["chosen"], f"{where} chosen")
            rejected = messages(row["rejected"], f"{where} rejected")
            if "prompt" in row:
                prompt = messages(row["prompt"], f"{where} prompt")
                if prompt[-1]["role"] != "user":
                    raise ValueError(f"{where}: the prompt must end with a user turn")
                for side, turns in (("chosen", chosen), ("rejected", rejected)):
                    if any(m["role"] != "assistant" for m in turns):
                        raise ValueError(f"{where}: {side} holds only assistant turns")
            if chosen == rejected:
                raise ValueError(f"{where}: chosen and rejected are the same")
        else:
            for key in columns:
                if not isinstance(row[key], str):
                    raise ValueError(f"{where}: {key} must be text in the standard format")
    return len(ds)


def check_openai(path):
    ds = load_dataset("json", data_files=path, split="train")
    if set(ds.column_names) != {"input", "preferred_output", "non_preferred_output"}:
        raise ValueError(f"not an OpenAI DPO file: columns {sorted(ds.column_names)}")
    for i, row in enumerate(ds):
        where = f"row {i}"
        messages(row["input"]["messages"], f"{where} input.messages")
        for key in ("preferred_output", "non_preferred_output"):
            out = messages(row[key], f"{where} {key}")
            if len(out) != 1 or out[0]["role"] != "assistant":
                raise ValueError(f"{where}: {key} is one assistant message")
        if row["preferred_output"] == row["non_preferred_output"]:
            raise ValueError(f"{where}: preferred and non-preferred are the same")
    return len(ds)


def main(argv):
    kind, path = argv[1], argv[2]
    extra = argv[argv.index("--extra") + 1 :] if "--extra" in argv else []
    n = check_trl(path, extra) if kind == "trl" else check_openai(path)
    print(n)


if __name__ == "__main__":
    try:
        main(sys.argv)
    except Exception as e:  # the reason, for the Rust test's message
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
