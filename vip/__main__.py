from vip.cli import main

main()
