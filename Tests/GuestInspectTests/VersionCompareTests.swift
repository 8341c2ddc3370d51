import Testing
import WispCore

@Suite struct VersionCompareTests {
    @Test func numbersCompareAsNumbers() {
        #expect(VersionCompare.compare("6.10.0", "6.9.12") > 0)
        #expect(VersionCompare.compare("6.1.0-28-cloud-amd64", "6.1.0-9-cloud-amd64") > 0)
        #expect(VersionCompare.compare("6.11.4-301.fc41.x86_64", "6.11.4-300.fc41.x86_64") > 0)
        #expect(VersionCompare.compare("5.14.0-427.13.1.el9_4.x86_64", "5.14.0-70.13.1.el9_0.x86_64") > 0)
        #expect(VersionCompare.compare("007", "7") == 0)
        #expect(VersionCompare.compare("1.0", "1.0") == 0)
    }

    @Test func tildeSortsBeforeEverything() {
        #expect(VersionCompare.compare("6.8.0~rc1", "6.8.0") < 0)
        #expect(VersionCompare.compare("1.0~rc1", "1.0~rc2") < 0)
        #expect(VersionCompare.compare("1.0~~", "1.0~") < 0)
    }

    @Test func caretSortsAfterTheEnd() {
        #expect(VersionCompare.compare("1.0^git1", "1.0") > 0)
        #expect(VersionCompare.compare("1.0^git1", "1.0.1") < 0)
    }

    @Test func dashSplitsVersionFromRelease() {
        #expect(VersionCompare.compare("1.0-2", "1.0.1-1") < 0)
        #expect(VersionCompare.compare("6.1.0", "6.1.0-28") < 0)
        #expect(VersionCompare.compare("2:1.0", "1:9.9") > 0)
    }

    @Test func numbersBeatLettersAndLettersCompareLexically() {
        #expect(VersionCompare.compare("1.0.1", "1.0.a") > 0)
        #expect(VersionCompare.compare("1.0a", "1.0b") < 0)
        #expect(VersionCompare.compare("linux-lts", "linux") > 0)
    }

    @Test func sortingKernelVersionsNewestFirst() {
        let versions = ["6.9.0", "6.10.0", "6.1.0-28", "6.10.0~rc7", "6.1.0-9"]
        let sorted = versions.sorted { VersionCompare.compare($0, $1) > 0 }
        #expect(sorted == ["6.10.0", "6.10.0~rc7", "6.9.0", "6.1.0-28", "6.1.0-9"])
    }
}
