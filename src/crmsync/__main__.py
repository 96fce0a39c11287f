from crmsync.cli import main

main()
