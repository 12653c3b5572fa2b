"""Music plugin: MIDI ideas from a small GPT-2 trained here (tools/music/)."""
