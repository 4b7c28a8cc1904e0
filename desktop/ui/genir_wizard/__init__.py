"""The dataset-generation (GenIR) wizard's window and pages; its state is
desktop/state/genir_wizard.py."""
