/// An 8-bit RGB image, row-major, 3 bytes per pixel (`pixels.count == width * height * 3`).
public struct RGBImage: Equatable, Sendable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]   // (height, width, 3)

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && pixels.count == width * height * 3, "RGBImage: pixel count must be width*height*3")
        self.width = width; self.height = height; self.pixels = pixels
    }

    /// A black image of the given size.
    public init(width: Int, height: Int) {
        self.init(width: width, height: height, pixels: [UInt8](repeating: 0, count: width * height * 3))
    }

    /// The pixel at (x, y) as (r, g, b).
    @inlinable public func pixel(_ x: Int, _ y: Int) -> (UInt8, UInt8, UInt8) {
        let i = (y * width + x) * 3
        return (pixels[i], pixels[i + 1], pixels[i + 2])
    }

    /// Converts channel-planar floats in [-1, 1] (shape (3, height, width)) to 8-bit RGB.
    public init(planar: [Float], width: Int, height: Int) {
        precondition(planar.count == 3 * width * height, "RGBImage: planar count must be 3*width*height")
        var px = [UInt8](repeating: 0, count: width * height * 3)
        let plane = width * height
        for c in 0..<3 {
            for i in 0..<plane {
                let v = ((planar[c * plane + i] + 1) * 127.5).rounded()
                px[i * 3 + c] = UInt8(max(0, min(255, v)))
            }
        }
        self.init(width: width, height: height, pixels: px)
    }

    /// Pastes `tile` with its top-left corner at (x, y); parts outside are clipped.
    public mutating func paste(_ tile: RGBImage, x: Int, y: Int) {
        for ty in 0..<tile.height where y + ty >= 0 && y + ty < height {
            for tx in 0..<tile.width where x + tx >= 0 && x + tx < width {
                let d = ((y + ty) * width + x + tx) * 3, s = (ty * tile.width + tx) * 3
                pixels[d] = tile.pixels[s]; pixels[d + 1] = tile.pixels[s + 1]; pixels[d + 2] = tile.pixels[s + 2]
            }
        }
    }

    /// Nearest-neighbour upscale by an integer factor.
    public func scaled(by k: Int) -> RGBImage {
        precondition(k >= 1)
        var out = RGBImage(width: width * k, height: height * k)
        for y in 0..<out.height {
            for x in 0..<out.width {
                let s = ((y / k) * width + x / k) * 3, d = (y * out.width + x) * 3
                out.pixels[d] = pixels[s]; out.pixels[d + 1] = pixels[s + 1]; out.pixels[d + 2] = pixels[s + 2]
            }
        }
        return out
    }
}
