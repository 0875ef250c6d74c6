"""Run inside an interpreter that has LLaMA-Factory (0.9.2 in .venv-lf092, or 0.9.4 in the training venv):
tokenize records with LLaMA-Factory's own template and supervised processors, and render chat templates with
the tokenizer's own apply_chat_template. Reads a JSON request from argv[1], writes the answer to argv[2].
Nothing of oda-sft is imported here: in the training venv, oda-sft's patches reach LLaMA-Factory only as the
trainer gets them (sitecustomize, ODA_SFT_PATCHES)."""

import json
import sys

from llamafactory.data.processor.supervised import PackedSupervisedDatasetProcessor, SupervisedDatasetProcessor
from llamafactory.data.template import get_template_and_fix_tokenizer
from llamafactory.hparams import DataArguments
from transformers import AutoTokenizer

with open(sys.argv[1], encoding="utf-8") as given:
    request = json.load(given)
tokenizer = AutoTokenizer.from_pretrained(request["tokenizer"])
answer = {}
for packing in (False, True):
    data_args = DataArguments(template=request["template"], cutoff_len=request["cutoff_len"], packing=packing)
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    records = request["records"]
    if not packing:
        answer["multiturn"] = [
            template.encode_multiturn(tokenizer, r["prompt"] + r["response"], r["system"] or None) for r in records
        ]
    examples = {
        "_prompt": [r["prompt"] for r in records],
        "_response": [r["response"] for r in records],
        "_system": [r["system"] for r in records],
        "_tools": ["" for _ in records],
        "_images": [None for _ in records],
        "_videos": [None for _ in records],
        "_audios": [None for _ in records],
    }
    kind = PackedSupervisedDatasetProcessor if packing else SupervisedDatasetProcessor
    processor = kind(template=template, tokenizer=tokenizer, processor=None, data_args=data_args)
    out = processor.preprocess_dataset(examples)
    answer["packed" if packing else "supervised"] = {
        key: out[key] for key in ("input_ids", "labels", "attention_mask", "position_ids") if key in out
    }
# The eval side: each chat template, applied by the tokenizer itself, to each conversation.
answer["chat"] = {
    name: [tokenizer.apply_chat_template(c, chat_template=text, tokenize=True) for c in request["conversations"]]
    for name, text in request["chat_templates"].items()
}
answer["chat_text"] = {
    name: [tokenizer.apply_chat_template(c, chat_template=text, tokenize=False) for c in request["conversations"]]
    for name, text in request["chat_templates"].items()
}
# What LLaMA-Factory trains as the prompt of each conversation (the system turn passed as its system).
answer["prompts"] = []
for c in request["conversations"]:
    system = c[0]["content"] if c[0]["role"] == "system" else None
    turns = c[1:] if system is not None else c
    answer["prompts"].append(
        template.encode_oneturn(tokenizer, [*turns, {"role": "assistant", "content": "x"}], system)[0]
    )
answer["versions"] = {
    "llamafactory": __import__("llamafactory").__version__,
    "transformers": __import__("transformers").__version__,
}
with open(sys.argv[2], "w", encoding="utf-8") as handle:
    json.dump(answer, handle)
