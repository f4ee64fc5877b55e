"""The command on what ships with cnntree: models (kind, size, data, test figures of each shipped model)."""

from __future__ import annotations

from pathlib import Path

from ..pretrained import cards, public_note
from .options import add_json


class Models:
    @staticmethod
    def add_arguments(p):
        add_json(p)

    @staticmethod
    def run(args) -> list:
        return cards()

    @staticmethod
    def text(found) -> str:
        lines = []
        for card in found:
            parameters = card.get("parameters")
            lines.append(f"{card['name']}: {card.get('kind', '?')} {card.get('spec', '')}, "
                         f"{f'{parameters:,}' if isinstance(parameters, int) else '?'} parameters, "
                         f"{card['bytes'] / 1e6:.2f} MB, trained on {card.get('data', '?')} "
                         f"({card.get('epochs_trained', '?')} epochs)")
            if "card_error" in card:
                lines.append(f"  card damaged: {card['card_error']}")
            else:
                lines.append(f"  PublicTest {card['public_accuracy']:.4f}{public_note(card)}, PrivateTest "
                             f"{card['private_accuracy']:.4f} (macro F1 {card['private_macro_f1']:.4f})")
                lines.append("  PrivateTest recall: " + ", ".join(f"{c} {r:.2f}" for c, r in card["private_recall"].items()))
            lines.append(f"  command: {card.get('command', '?')}")
            lines.append(f"  card: {Path(card['path']) / 'MODEL_CARD.md'}")
        return "\n".join(lines) if found else "(no model ships with this installation)"


COMMANDS = {"models": Models}
