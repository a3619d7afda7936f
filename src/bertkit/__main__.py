from bertkit.cli.main import main

main()
