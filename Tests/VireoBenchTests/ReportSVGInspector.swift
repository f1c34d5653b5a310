import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// Parses an SVG with Foundation's XMLParser and records what the report
/// tests look at.
final class SVGInspector: NSObject, XMLParserDelegate {
    private(set) var rootElement: String?
    private(set) var series: [String] = []
    private(set) var texts: [String] = []
    private(set) var elementCounts: [String: Int] = [:]
    private(set) var error: String?
    private var currentText = ""

    /// Parses `svg`; false when it is not well-formed XML.
    static func parse(_ svg: String) -> SVGInspector? {
        let inspector = SVGInspector()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = inspector
        guard parser.parse(), inspector.error == nil else { return nil }
        return inspector
    }

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
        if rootElement == nil { rootElement = elementName }
        elementCounts[elementName, default: 0] += 1
        if elementName == "g", attributeDict["class"] == "series", let name = attributeDict["data-series"] {
            series.append(name)
        }
        currentText = ""
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { currentText += string }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?,
                qualifiedName qName: String?) {
        if elementName == "text" { texts.append(currentText) }
        currentText = ""
    }

    func parser(_ parser: XMLParser, parseErrorOccurred parseError: any Error) {
        error = String(describing: parseError)
    }
}
