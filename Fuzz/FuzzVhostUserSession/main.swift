import VireoFuzz
#if canImport(Glibc)
import Glibc
#endif

exit(FuzzDriver.main(.vhostUserSession))
