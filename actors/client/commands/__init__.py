"""One module per family of commands; each exposes COMMANDS: name -> cli.Command."""
