"""FoundBlockJournal: whole blocks as .hex, blocks known only by header and coinbase beside them."""

from __future__ import annotations

from pathlib import Path

from sv2proxy.template.found_blocks import FoundBlockJournal


def test_a_whole_block_replaces_what_was_known_of_it(tmp_path: Path) -> None:
    journal = FoundBlockJournal(tmp_path / "blocks")
    partial = journal.save_incomplete("aa", '{"complete": false}\n')
    assert journal.incomplete() == [partial] and journal.pending() == []  # never taken for a block
    whole = journal.save("aa", "00ff")
    assert journal.pending() == [("aa", "00ff")] and journal.incomplete() == [] and not partial.exists()
    assert whole.stat().st_mode & 0o777 == 0o600


def test_settling_moves_whichever_form_the_block_has(tmp_path: Path) -> None:
    journal = FoundBlockJournal(tmp_path / "blocks")
    journal.save_incomplete("bb", "{}\n")
    journal.settle("bb", True)
    assert (journal.accepted_dir / "bb.incomplete.json").exists() and journal.incomplete() == []
    # The whole block came after it was settled: settling again leaves the whole block alone.
    journal.save("bb", "00")
    journal.settle("bb", True)
    assert [path.name for path in journal.accepted_dir.iterdir()] == ["bb.hex"]
