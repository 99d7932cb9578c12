"""The front doors: the CLI, the Hydra apps, completion and output tables.

cli         the imageworks-loader command: run one operation, exit codes
parser      its argparse parser, built from OPERATIONS
commands    each command's summary, details and examples
arguments   the command line's words to an operation's arguments
output      JSON on stdout, one-line errors and warnings on stderr
completion  bash and zsh completion (model names from the layer files)
tables      --format table
apps        python -m loader.apps: every operation as a Hydra app
hydra_app   running an operation under hydra.main (for apps and the CLI)
"""
