"""Music plugin (in progress, issue 4): tokens shared by training and generation."""
