/// The three areas of a virtqueue (§2.6): descriptor table / ring, driver area, device area.
public enum RingArea: Equatable, Sendable {
    case descriptors, driver, device
}
