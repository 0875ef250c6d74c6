"""The 2025 era's template: LLaMA-Factory 0.9.2's `default`, registered in 0.9.4 as `oda_default_2025`.

LLaMA-Factory 0.9.2 (src/llamafactory/data/template.py, lines 808-813 at tag v0.9.2) renders a turn as
`System: {s}\\n` `Human: {q}\\nAssistant:` `{a}<eos>\\n`; 0.9.4 (lines 921-927 at v0.9.4; the change is
128b5b12b, "[data] fix template (#7349)", 2025-03-17) adds the EOS token after the system and user turns.
ODA's published leaderboard of July 2025 was trained with 0.9.2. Function turns get 0.9.2's slots too
(`{content}<eos>`; 0.9.4 copies the assistant's, adding `\\n`), though the recipe's data has none.
`replace_jinja_template` keeps 0.9.4's choice, so the checkpoint's saved chat template describes the tokens
it was trained on (0.9.2 kept a base model's own chat template; ODA's eval replaced it anyway).
tests/integration/test_recipe_eras.py proves the tokens and labels equal to LLaMA-Factory 0.9.2's own.
"""

from __future__ import annotations

from types import ModuleType

from oda_sft.eras import TEMPLATE_2025

WRITTEN_FOR = {"llamafactory": "0.9.4"}
TARGET = "llamafactory.data.template"
FIX_HINT = "install LLaMA-Factory 0.9.4 (pip install 'llamafactory==0.9.4'), or train with --recipe 2026"


def install(template_module: ModuleType) -> None:
    if TEMPLATE_2025 in template_module.TEMPLATES:
        return
    from llamafactory.data.formatter import FunctionFormatter, StringFormatter

    template_module.register_template(
        name=TEMPLATE_2025,
        format_user=StringFormatter(slots=["Human: {{content}}\nAssistant:"]),
        format_assistant=StringFormatter(slots=["{{content}}", {"eos_token"}, "\n"]),
        format_system=StringFormatter(slots=["System: {{content}}\n"]),
        format_function=FunctionFormatter(slots=["{{content}}", {"eos_token"}], tool_format="default"),
        replace_jinja_template=True,
    )
