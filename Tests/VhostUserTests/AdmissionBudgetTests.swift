import Foundation
import Synchronization
import Testing
import VireoSys
import Virtio
import VirtioDriver
@testable import VhostUser
@testable import VhostUserFrontend

/// A device that takes chains of queue 0 only while `budget` allows, wakes
/// its worker through an eventfd, and counts `willPark` calls.
private final class BudgetDevice: VhostUserDevice, @unchecked Sendable {
    let budget = Atomic<Int>(0)
    let handled = Atomic<Int>(0)
    let parks = Atomic<Int>(0)
    let wake = try! EventFD()
    var deviceType: VirtioDeviceType { .net }
    var features: UInt64 { VirtioFeatures.version1 | VirtioFeatures.eventIdx }
    var queueCount: Int { 1 }
    var maxQueueSize: UInt16 { 64 }
    func configSpace() -> [UInt8] { [UInt8](repeating: 0, count: 12) }
    func admissionBudget(queue: Int) -> Int { budget.load(ordering: .acquiring) }
    func handle(_ request: VhostUserQueueRequest) {
        budget.subtract(1, ordering: .acquiringAndReleasing)
        handled.add(1, ordering: .relaxed)
        request.complete(writtenLength: 0)
    }
    func wakeDescriptors(worker: Int) -> [Int32] { [wake.rawValue] }
    func prepareToSleep(worker: Int) -> Bool { wake.drain(); return false }
    func needsTimedPolling(worker: Int) -> Bool { false }
    func willPark(worker: Int) { parks.add(1, ordering: .relaxed) }
    func grant(_ n: Int) { budget.add(n, ordering: .releasing); wake.signal() }
}

@Suite(.serialized) struct AdmissionBudgetTests {
    @Test func chainsWaitInTheRingUntilTheDeviceHasBudget() throws {
        let path = socketPath("budget")
        let device = BudgetDevice()
        let server = try VhostUserServer(path: path, device: device,
                                         options: VhostUserOptions(polling: VhostUserPollingOptions(spinIterations: 50)))
        try server.start()
        defer { server.stop() }
        let memory = try DriverMemory(size: 2 << 20)
        let fe = try VhostUserFrontend(path: path)
        try fe.negotiate(wanted: VirtioFeatures.version1 | VirtioFeatures.eventIdx)
        try fe.setMemTable(memory)
        let q = SplitDriverQueue(memory: memory, size: 16, eventIdx: true)
        try fe.setUpRing(0, driver: q)
        #expect(device.parks.load(ordering: .relaxed) >= 1)   // workers park around ring setup
        let buf = memory.allocate(64)
        for _ in 0..<5 { q.add(readable: [DriverBuffer(gpa: buf, length: 64)], writable: []) }
        fe.kick(0)
        // No budget: nothing is popped.
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 300).isEmpty)
        #expect(device.handled.load(ordering: .relaxed) == 0)
        // Budget for 2: exactly 2 are taken; the other 3 stay in the ring.
        device.grant(2)
        #expect(fe.waitForUsed(0, count: 2).count == 2)
        #expect(fe.waitForUsed(0, count: 1, timeoutMilliseconds: 300).isEmpty)
        // More budget (no kick: the device's wake descriptor wakes the worker).
        device.grant(10)
        #expect(fe.waitForUsed(0, count: 3).count == 3)
        #expect(device.handled.load(ordering: .relaxed) == 5)
    }
}
