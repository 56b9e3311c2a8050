"""The dataset format (`layout`) and the reason codes of its quarantine (`reasons`): one owner for both."""
