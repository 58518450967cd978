// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "kiln",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "kiln", targets: ["kiln"]),
        .library(name: "KilnCore", targets: ["KilnCore"]),
        .library(name: "KilnTracking", targets: ["KilnTracking"]),
        .library(name: "KilnRegistry", targets: ["KilnRegistry"]),
        .library(name: "KilnModelFormat", targets: ["KilnModelFormat"]),
        .library(name: "KilnParquet", targets: ["KilnParquet"]),
        .library(name: "KilnLake", targets: ["KilnLake"]),
        .library(name: "KilnFrame", targets: ["KilnFrame"]),
        .library(name: "KilnSQL", targets: ["KilnSQL"]),
        .library(name: "KilnLearn", targets: ["KilnLearn"]),
        .library(name: "KilnTraining", targets: ["KilnTraining"]),
        .library(name: "KilnServing", targets: ["KilnServing"]),
        .library(name: "KilnJobs", targets: ["KilnJobs"]),
        .library(name: "KilnBundles", targets: ["KilnBundles"]),
        .library(name: "KilnIdentity", targets: ["KilnIdentity"]),
        .library(name: "KilnAudit", targets: ["KilnAudit"]),
        .library(name: "KilnCatalog", targets: ["KilnCatalog"]),
        .library(name: "KilnPermissions", targets: ["KilnPermissions"]),
        .library(name: "KilnPlatform", targets: ["KilnPlatform"]),
        .library(name: "KilnServer", targets: ["KilnServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/vapor/sql-kit.git", from: "3.36.0"),
        .package(url: "https://github.com/vapor/sqlite-kit.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        .target(
            name: "KilnCore",
            dependencies: [.product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        // Local files and S3 (Kiln's own SigV4 client over async-http-client).
        .target(
            name: "KilnBlob",
            dependencies: ["KilnCore", .product(name: "Crypto", package: "swift-crypto"), .product(name: "AsyncHTTPClient", package: "async-http-client")],
            swiftSettings: strict
        ),
        // The semantics every BlobStore backend must meet, run by `swift test` and `kiln storage check`.
        .target(name: "KilnBlobConformance", dependencies: ["KilnCore", "KilnBlob"], swiftSettings: strict),
        .target(
            name: "KilnStore",
            dependencies: ["KilnCore", .product(name: "SQLKit", package: "sql-kit")],
            swiftSettings: strict
        ),
        .target(
            name: "KilnStoreSQLite",
            dependencies: [
                "KilnCore", "KilnStore",
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "SQLiteKit", package: "sqlite-kit"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "KilnTracking",
            dependencies: ["KilnCore", "KilnStore", "KilnBlob", .product(name: "SQLKit", package: "sql-kit")],
            swiftSettings: strict
        ),
        .systemLibrary(name: "CSnappy", path: "Sources/CSnappy", providers: [.apt(["libsnappy-dev"])]),
        .systemLibrary(name: "CZstd", path: "Sources/CZstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "KilnParquet", dependencies: ["CSnappy", "CZstd", "CZlib"], swiftSettings: strict),
        .target(name: "KilnLake", dependencies: ["KilnCore", "KilnBlob", "KilnParquet"], swiftSettings: strict),
        .target(name: "KilnFrame", dependencies: ["KilnCore", "KilnParquet", "KilnLake"], swiftSettings: strict),
        .target(name: "KilnSQL", dependencies: ["KilnCore", "KilnParquet", "KilnLake", "KilnFrame"], swiftSettings: strict),
        .systemLibrary(name: "CXGBoost", path: "Sources/CXGBoost", providers: [.apt(["libxgboost-dev"])]),
        // Optimized even in debug builds: the compatibility suites fit forests on 200,000 rows with the debug binary.
        .target(name: "KilnLearn", dependencies: ["KilnCore", "KilnParquet", "KilnFrame", "KilnModelFormat", "CXGBoost"],
                swiftSettings: strict + [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        .target(
            name: "KilnModelFormat",
            dependencies: ["KilnCore", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
        .target(
            name: "KilnRegistry",
            dependencies: [
                "KilnCore", "KilnStore", "KilnBlob", "KilnModelFormat", .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "Crypto", package: "swift-crypto"), .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Capabilities above the engine layers. Each owns its tables, types and service, and reaches another
        // capability only through a protocol it declares (wired in KilnPlatform).
        .target(name: "KilnPython", dependencies: ["KilnCore"], swiftSettings: strict),
        .target(
            name: "KilnTraining",
            dependencies: ["KilnCore", "KilnBlob", "KilnLake", "KilnFrame", "KilnLearn"],
            swiftSettings: strict
        ),
        .target(
            name: "KilnServing",
            dependencies: ["KilnCore", "KilnStore", "KilnLake", "KilnFrame", "KilnLearn", "KilnPython",
                           .product(name: "SQLKit", package: "sql-kit"), .product(name: "Logging", package: "swift-log"),
                           .product(name: "Metrics", package: "swift-metrics"),
                           .product(name: "AsyncHTTPClient", package: "async-http-client")],
            swiftSettings: strict
        ),
        .target(
            name: "KilnJobs",
            dependencies: ["KilnCore", "KilnStore", "KilnLake", "KilnSQL", "KilnPython", .product(name: "SQLKit", package: "sql-kit"),
                           .product(name: "Logging", package: "swift-log"), .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .target(
            name: "KilnIdentity",
            dependencies: ["KilnCore", "KilnStore", .product(name: "SQLKit", package: "sql-kit"),
                           .product(name: "Logging", package: "swift-log"), .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .target(
            name: "KilnPermissions",
            dependencies: ["KilnCore", "KilnStore", .product(name: "SQLKit", package: "sql-kit"), .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .target(
            name: "KilnCatalog",
            dependencies: ["KilnCore", "KilnStore", "KilnLake", "KilnFrame", "KilnSQL", .product(name: "SQLKit", package: "sql-kit"),
                           .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .target(
            name: "KilnAudit",
            dependencies: ["KilnCore", "KilnStore", "KilnLake", "KilnFrame", .product(name: "SQLKit", package: "sql-kit"),
                           .product(name: "Logging", package: "swift-log"), .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .target(name: "KilnFeatures", dependencies: ["KilnCore", "KilnLake", "KilnFrame", "KilnSQL", "KilnPython"], swiftSettings: strict),
        .target(name: "KilnBundles", dependencies: ["KilnCore", .product(name: "Yams", package: "Yams")], swiftSettings: strict),
        // Work Kiln does on a caller's behalf across capabilities (training, scoring, promotion, serving from the REST
        // API and jobs' native tasks), checked as that caller: composes capability services, wired by KilnPlatform.
        .target(
            name: "KilnDelegation",
            dependencies: ["KilnCore", "KilnLake", "KilnTracking", "KilnRegistry", "KilnTraining", "KilnServing", "KilnJobs", "KilnCatalog",
                           "KilnPermissions"],
            swiftSettings: strict
        ),
        .target(
            name: "KilnPlatform",
            dependencies: ["KilnCore", "KilnStore", "KilnStoreSQLite", "KilnBlob", "KilnTracking", "KilnRegistry", "KilnSQL", "KilnLearn",
                           "KilnLake", "KilnFrame", "KilnModelFormat", "KilnTraining", "KilnServing", "KilnJobs", "KilnIdentity", "KilnAudit", "KilnCatalog", "KilnPermissions",
                           "KilnFeatures", "KilnDelegation", .product(name: "Logging", package: "swift-log"),
                           .product(name: "AsyncHTTPClient", package: "async-http-client")],
            swiftSettings: strict
        ),
        .target(
            name: "KilnWeb",
            dependencies: ["KilnCore", "KilnStore", "KilnBlob", "KilnTracking", "KilnRegistry", "KilnJobs", "KilnSQL", "KilnFrame", "KilnServing",
                           "KilnLake", "KilnParquet", "KilnPermissions",
                           .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "SQLKit", package: "sql-kit"),
                           .product(name: "HTTPTypes", package: "swift-http-types")],
            swiftSettings: strict
        ),
        .target(
            name: "KilnServer",
            dependencies: [
                "KilnCore", "KilnBlob", "KilnDelegation", "KilnTracking", "KilnRegistry", "KilnPlatform", "KilnSQL", "KilnFrame", "KilnLearn",
                "KilnTraining", "KilnServing", "KilnJobs", "KilnWeb", "KilnIdentity", "KilnAudit", "KilnCatalog", "KilnPermissions",
                "KilnFeatures", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "kiln",
            dependencies: [
                "KilnCore", "KilnPlatform", "KilnServer", "KilnTracking", "KilnParquet", "KilnLake", "KilnFrame", "KilnSQL", "KilnLearn",
                "KilnTraining", "KilnServing", "KilnJobs", "KilnBundles", "KilnBlob", "KilnBlobConformance", "KilnPython", "KilnAudit",
                "KilnStoreSQLite",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict,
            // Release builds export no symbols: at every start the runtime's backtracer looks its own address up
            // with dladdr, a linear walk over every exported symbol (~50,000, ~0.8 ms per `kiln` process).
            linkerSettings: [.unsafeFlags(["-Xlinker", "--no-export-dynamic"], .when(configuration: .release))]
        ),
        .target(
            name: "KilnTestSupport",
            dependencies: ["KilnCore", "KilnPlatform", "KilnTracking", "KilnRegistry", "KilnBlob", "KilnStore", "KilnStoreSQLite", "KilnCatalog"],
            path: "Tests/KilnTestSupport",
            exclude: ["authz_matrix.json"],
            swiftSettings: strict
        ),
        .testTarget(name: "KilnWebTests", dependencies: ["KilnWeb", "KilnCore"], swiftSettings: strict),
        .testTarget(name: "KilnCoreTests", dependencies: ["KilnCore", "KilnBlob", "KilnBlobConformance"], swiftSettings: strict),
        .testTarget(
            name: "KilnTrackingTests",
            dependencies: ["KilnTracking", "KilnTestSupport", "KilnCore"],
            swiftSettings: strict
        ),
        .testTarget(name: "KilnParquetTests", dependencies: ["KilnParquet"], swiftSettings: strict),
        .testTarget(name: "KilnLakeTests", dependencies: ["KilnLake", "KilnParquet", "KilnCore", "KilnBlob"], swiftSettings: strict),
        .testTarget(name: "KilnSQLTests", dependencies: ["KilnSQL", "KilnFrame", "KilnLake", "KilnParquet", "KilnCore"], swiftSettings: strict),
        .testTarget(name: "KilnLearnTests", dependencies: ["KilnLearn", "KilnFrame", "KilnModelFormat", "KilnCore"], swiftSettings: strict),
        .testTarget(name: "KilnModelFormatTests", dependencies: ["KilnModelFormat", "KilnCore"], swiftSettings: strict),
        .testTarget(
            name: "KilnRegistryTests",
            dependencies: ["KilnRegistry", "KilnTestSupport", "KilnCore", "KilnBlob"],
            swiftSettings: strict
        ),
        .testTarget(name: "KilnJobsTests", dependencies: ["KilnJobs", "KilnPlatform", "KilnTestSupport", "KilnCore"], swiftSettings: strict),
        .testTarget(name: "KilnCatalogTests", dependencies: ["KilnCatalog", "KilnTestSupport", "KilnCore", "KilnSQL", "KilnStore"],
                    swiftSettings: strict),
        .testTarget(name: "KilnAuditTests", dependencies: ["KilnAudit", "KilnTestSupport", "KilnCore", "KilnSQL"], swiftSettings: strict),
        .testTarget(name: "KilnPermissionsTests", dependencies: ["KilnPermissions", "KilnTestSupport", "KilnCore"], swiftSettings: strict),
        .testTarget(name: "KilnIdentityTests", dependencies: ["KilnIdentity", "KilnTestSupport", "KilnCore"], swiftSettings: strict),
        .testTarget(name: "KilnFeaturesTests", dependencies: ["KilnFeatures", "KilnFrame", "KilnLake", "KilnCore"], swiftSettings: strict),
        .testTarget(name: "KilnServingTests", dependencies: ["KilnServing", "KilnCore", "KilnFrame"], swiftSettings: strict),
        .testTarget(
            name: "KilnServerTests",
            dependencies: [
                "KilnServer", "KilnTestSupport", "KilnPlatform",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: strict
        ),
    ]
)
