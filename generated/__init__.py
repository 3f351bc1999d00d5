"""Generated protocol modules (``daqwire generate`` writes them; never edit them by hand)."""
