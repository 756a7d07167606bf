from tasksd.cli import main

main()
